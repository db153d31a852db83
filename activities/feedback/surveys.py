"""Sending the surveys Winback collects itself: an email or SMS with the signed link (an SMS can
also be answered by replying with the score), or an automated call that asks on the keypad.

Exactly once per invite, through ``notify`` (a claimed dedupe key before the provider is called).
Consent is checked at the moment of sending: a customer who opted out since is not asked. A text
or a call waits out the retailer's quiet hours (its cadence's, in the customer's zone), as every
text and call of a cart does: the attempt fails with ``QuietHours`` and asks Temporal to retry
when they end (``next_retry_delay``), so the survey workflow needs no timer of its own.
"""

from datetime import datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging.notify import Recipient, notify
from winback.carts.cadence import QuietHours
from winback.carts.cadence_store import current_cadence_cached
from winback.customers.models import Customer
from winback.feedback.models import SurveyInvite
from winback.feedback.survey_links import survey_url
from winback.feedback.survey_texts import pick_language, text
from winback.feedback.surveys import survey_gather_url, survey_message, survey_twiml
from winback.messaging.channels.router import Adapters
from winback.messaging.quiet_hours import quiet_until, recipient_zone
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.errors import ErrorType
from workflows.feedback.types import SurveyInput


async def send_invite(
    sessions: SessionFactory,
    adapters: Adapters,
    settings: Settings,
    *,
    invite: SurveyInvite,
    customer: Customer,
    retailer: Retailer,
    key: str,
    template: str,
    at: object = None,
) -> str | None:
    """Sends ``invite`` on its channel; None when the customer cannot be asked on it now."""
    channel = invite.channel
    if channel not in ("email", "sms", "voice"):
        return None
    if not customer.address_for(channel) or not customer.consents_to(channel):
        return None
    assert invite.id is not None
    language = pick_language(locale=invite.locale, country=retailer.country)
    recipient = Recipient(customer.name or "", customer.email, customer.phone)
    when = at if at is not None else utcnow()
    twiml = None
    if channel == "voice":
        subject = text(language, "email_subject")
        body = text(language, f"ivr_prompt_{invite.scale}", store=retailer.name)
        twiml = survey_twiml(
            invite,
            store=retailer.name,
            language=language,
            gather_url=survey_gather_url(settings, retailer.id, invite.id, attempt=1),
        )
    else:
        url = survey_url(settings, retailer.id, invite.id, invite.created_at)
        subject, body = survey_message(invite, store=retailer.name, language=language, url=url)
    await notify(
        sessions,
        adapters,
        retailer.id,
        recipient,
        channel,
        key,
        subject,
        body,
        when,  # type: ignore[arg-type]
        customer_id=customer.id,
        template=template,
        twiml=twiml,
        event_grace=timedelta(seconds=settings.send_event_grace_seconds),
    )
    return channel


class SurveyActivities:
    def __init__(self, sessions: SessionFactory, adapters: Adapters, settings: Settings) -> None:
        self._sessions = sessions
        self._adapters = adapters
        self._settings = settings

    @activity.defn
    async def send_survey(self, input: SurveyInput) -> str | None:
        """Sends the invite once on its channel; None if the customer cannot be asked now."""
        async with session_scope(self._sessions) as session:
            invite = await session.get(SurveyInvite, input.invite_id)
            if invite is None or invite.retailer_id != input.retailer_id:
                raise ApplicationError(
                    f"no survey {input.invite_id}",
                    type=ErrorType.UNKNOWN_SURVEY,
                    non_retryable=True,
                )
            retailer = await session.get(Retailer, invite.retailer_id)
            customer = (
                await session.get(Customer, invite.customer_id) if invite.customer_id else None
            )
            if customer is None or retailer is None or invite.answer_id is not None:
                return None
            if input.wait_out_quiet_hours and input.at and invite.channel in ("sms", "voice"):
                cadence = await current_cadence_cached(session, retailer_id=retailer.id)
                _refuse_in_quiet_hours(customer, retailer, cadence.quiet_hours, input.at)
        return await send_invite(
            self._sessions,
            self._adapters,
            self._settings,
            invite=invite,
            customer=customer,
            retailer=retailer,
            key=f"survey-{invite.retailer_id}-{invite.id}",
            template="survey",
            at=input.at,
        )


def _refuse_in_quiet_hours(
    customer: Customer, retailer: Retailer, quiet: QuietHours, at: datetime
) -> None:
    """``QuietHours`` (non-retryable, with the time they end) if ``at`` falls inside them; the
    workflow's clock, not this machine's, so a test server's skipped time counts."""
    zone = recipient_zone(customer.timezone, customer.phone, retailer.timezone)
    until = quiet_until(at, zone, quiet.start, quiet.end)
    if until is not None:
        raise ApplicationError(
            f"quiet hours in {zone.key} until {quiet.end.strftime('%H:%M')}",
            until.isoformat(),
            type=ErrorType.QUIET_HOURS,
            non_retryable=True,
        )
