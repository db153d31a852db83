"""The default adapter: the message row in the database *is* the delivery.

Used whenever no provider keys are set, so the embedded stack sends nothing anywhere and every
message can be read at ``GET /v1/outbox``.
"""

from winback.messaging.channels.base import OutgoingMessage, SendReceipt


class OutboxAdapter:
    name = "outbox"

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        return SendReceipt(provider=self.name, provider_message_id=f"outbox-{message.message_id}")
