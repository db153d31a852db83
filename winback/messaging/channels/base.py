"""The interface every channel adapter implements.

An adapter only talks to its provider; the messaging activity owns idempotency (it claims the
message's dedupe key in the database before calling ``send``) and the guards (consent,
suppression, quiet hours, frequency cap).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: int  # our id; carried to the provider (custom_args / callback URL) to map events
    retailer_id: str
    channel: str  # "email" | "sms" | "voice"
    to: str  # email address or E.164 phone number
    body: str  # plain text (email text part, SMS text, words the call reads)
    subject: str | None = None
    html: str | None = None
    categories: list[str] = field(default_factory=list)
    unsubscribe_url: str | None = None  # email: RFC 8058 one-click List-Unsubscribe
    template: str | None = None  # our template's name: a provider may map it to its own
    template_data: dict[str, Any] = field(default_factory=dict)  # the values it was rendered with
    status_callback_url: str | None = None  # SMS/voice: where Twilio reports delivery
    gather_url: str | None = None  # voice: after the message, "press 1" posts the key here
    store_name: str | None = None  # voice: named in the "press 1" prompt
    twiml: str | None = None  # voice: the call's own TwiML (a survey's <Gather>), used as is


@dataclass(frozen=True)
class SendReceipt:
    provider: str  # "outbox" | "sendgrid" | "twilio"
    provider_message_id: str | None = None


class TransientSendError(Exception):
    """The provider did not take the message but may later (429, 5xx, timeout). Retry.

    ``maybe_sent``: the request may have reached the provider (a timeout waiting for the
    answer), so the claim is kept and the retry asks the provider before sending again."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class PermanentSendError(Exception):
    """The provider refused the message for good (invalid number, bad request). Do not retry."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ChannelAdapter(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """Hands the message to the provider, or raises one of the two errors above."""
        ...


@runtime_checkable
class SentLookup(Protocol):
    """An adapter whose provider can tell whether it took a message (Twilio lists what was
    sent to a number): how a send interrupted by a crash is settled without a duplicate."""

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        """The provider's record of ``message`` if it took it at or after ``since``."""
        ...
