"""Winback's vocabulary: every channel, stage, status and outcome, defined once.

``StrEnum``s, so a member *is* its string: stored in tables, sent in workflow payloads and
returned by the API as plain text, and compared with strings from older histories unchanged.
Groups of members (``Stage.FINAL``, ``TaskStatus.ACTIVE``...) are ``nonmember`` tuples.
Standard library only: workflows import this inside the sandbox.
"""

from enum import StrEnum, nonmember
from typing import Literal


class Channel(StrEnum):
    ONSITE = "onsite"
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    AGENT_CALL = "agent_call"


class Stage(StrEnum):
    ACTIVE = "active"  # shopper still on the site
    ABANDONED = "abandoned"  # inactive past the threshold, follow-ups not sent yet
    CONTACTING = "contacting"  # at least one follow-up sent
    PURCHASED = "purchased"  # bought before abandonment
    RECOVERED = "recovered"  # bought after abandonment
    OPTED_OUT = "opted_out"
    DECLINED = "declined"  # told an agent they are not interested
    EXPIRED = "expired"  # the cart expired before its cadence was through
    # Every follow-up step ran (sent or skipped) and the journey ended there; a later purchase
    # is credited by the API (``winback.carts.attribution``), not by the workflow.
    COMPLETED = "completed"

    FINAL = nonmember(frozenset({PURCHASED, RECOVERED, OPTED_OUT, DECLINED, EXPIRED, COMPLETED}))


class StepOutcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # a condition, consent, suppression or the frequency cap said no
    POSTPONED = "postponed"  # quiet hours: try again at ``retry_at``
    STOPPED = "stopped"  # the cart was bought or opted out meanwhile
    FAILED = "failed"  # the provider refused it for good
    READY = "ready"  # guards passed; for steps a person carries out (agent calls)
    NOT_DUE = "not_due"  # the shopper was active since: the first follow-up is due at retry_at


class TaskKind(StrEnum):
    CALL_SHOPPER = "call_shopper"
    CALLBACK = "callback"


class CallOutcome(StrEnum):
    REACHED_PURCHASED = "reached_purchased"
    REACHED_NOT_INTERESTED = "reached_not_interested"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"

    ALL = nonmember((REACHED_PURCHASED, REACHED_NOT_INTERESTED, VOICEMAIL, NO_ANSWER, WRONG_NUMBER))
    RETRY = nonmember((VOICEMAIL, NO_ANSWER))


class CaseStage(StrEnum):
    ALERTING = "alerting"
    CONTACTING = "contacting"
    ROOT_CAUSE = "root_cause"
    RESOLUTION = "resolution"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"


class CaseTaskKind(StrEnum):
    CONTACT = "contact_customer"
    ROOT_CAUSE = "root_cause"
    RESOLUTION = "resolution"


class ContactOutcome(StrEnum):
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    REFUSED = "refused"

    ALL = nonmember((REACHED, NOT_REACHED, REFUSED))


class CloseReason(StrEnum):
    RESOLVED = "resolved"
    REFUSED = "refused"  # the customer did not want to talk: closed as not contacted
    NOT_REACHED = "not_reached"  # every contact attempt went unanswered


class CartStatus(StrEnum):
    ACTIVE = "active"
    ABANDONED = "abandoned"
    ORDERED = "ordered"
    OPTED_OUT = "opted_out"


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"

    ACTIVE = nonmember((OPEN, CLAIMED))


class AnswerKind(StrEnum):
    DETRACTOR = "detractor"  # opens a case (by the retailer's thresholds)
    PASSIVE = "passive"
    PROMOTER = "promoter"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MessageStatus(StrEnum):
    SENDING = "sending"  # claimed, provider call in flight (or the worker died mid-call)
    SENT = "sent"  # accepted by the provider, or written to the outbox
    FAILED = "failed"  # the provider refused it for good
    PENDING = "pending"  # on-site nudge waiting for the storefront to show it
    SHOWN = "shown"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    # Reported later by the providers' webhooks:
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    READ = "read"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    UNDELIVERED = "undelivered"
    SPAM_REPORT = "spam_report"
    UNSUBSCRIBED = "unsubscribed"
    # The cart is in its cadence's holdout group: recorded, never sent, and counted nowhere
    # (not a touch, not against the frequency cap, never credited with an order).
    HELD_OUT = "held_out"

    # Reached the shopper (or surely went out): a touch for attribution and the reports.
    TOUCHED = nonmember(
        (SENDING, SENT, DELIVERED, OPENED, CLICKED, READ, SPAM_REPORT, UNSUBSCRIBED)
    )
    # Left us, whatever became of it: what the frequency cap counts.
    WENT_OUT = nonmember(
        (
            *(SENDING, SENT, DELIVERED, OPENED, CLICKED, READ, SPAM_REPORT, UNSUBSCRIBED),
            *(BOUNCED, DROPPED, UNDELIVERED),
        )
    )


# Channel groups, named by what they are for.
PROVIDER_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.VOICE)  # sent through an adapter
PHONE_CHANNELS = (Channel.SMS, Channel.VOICE, Channel.AGENT_CALL)  # quiet hours, phone guards
TOUCH_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.VOICE, Channel.AGENT_CALL)  # frequency cap
ProviderChannel = Literal[Channel.EMAIL, Channel.SMS, Channel.VOICE]  # consent is kept for these
