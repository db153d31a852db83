"""Channel adapters: one interface, three implementations (outbox, SendGrid, Twilio)."""

from winback.messaging.channels.base import (
    ChannelAdapter,
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)

__all__ = [
    "ChannelAdapter",
    "OutgoingMessage",
    "PermanentSendError",
    "SendReceipt",
    "TransientSendError",
]
