"""The interface every channel adapter implements.

An adapter only talks to its provider; the messaging activity owns idempotency (it claims the
message's dedupe key in the database before calling ``send``) and the guards (consent,
suppression, quiet hours, frequency cap).
"""

from dataclasses import dataclass, field
from typing import Any, Protocol


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


@dataclass(frozen=True)
class SendReceipt:
    provider: str  # "outbox" | "sendgrid" | "twilio"
    provider_message_id: str | None = None


class TransientSendError(Exception):
    """The provider did not take the message but may later (429, 5xx, timeout). Retry."""


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
