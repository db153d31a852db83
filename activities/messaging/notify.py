"""Notifying a person (an agent, a case owner, a customer asked for a survey) exactly once.

The same claim-then-deliver path as shopper messages: the key is claimed with a row before the
provider is called, so a retried activity never notifies twice.
"""

from dataclasses import dataclass
from datetime import datetime

from activities.messaging.sends import deliver, message_by_key
from winback.messaging.channels import OutgoingMessage
from winback.messaging.channels.router import Adapters
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from workflows.vocabulary import MessageStatus


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str | None = None
    phone: str | None = None

    def address_for(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone


async def notify(
    sessions: SessionFactory,
    adapters: Adapters,
    retailer_id: str,
    recipient: Recipient,
    channel: str,
    key: str,
    subject: str,
    body: str,
    at: datetime,
    *,
    customer_id: int | None = None,
    template: str = "agent_notification",
    twiml: str | None = None,
) -> bool:
    """Sends once per ``key``; False if the recipient has no address on that channel."""
    address = recipient.address_for(channel)
    if not address:
        return False
    async with session_scope(sessions) as session:
        if await message_by_key(session, key) is not None:
            return True
        message = Message(
            retailer_id=retailer_id,
            customer_id=customer_id,
            dedupe_key=key,
            channel=channel,
            template=template,
            to_address=address,
            subject=subject,
            body=body,
            status=MessageStatus.SENDING,
            created_at=at,
        )
        session.add(message)
        await session.flush()
        assert message.id is not None
        outgoing = OutgoingMessage(
            message_id=message.id,
            retailer_id=retailer_id,
            channel=channel,
            to=address,
            body=body,
            subject=subject,
            categories=["winback", template.replace("_", "-")],
            twiml=twiml,
        )
    await deliver(sessions, adapters, outgoing, at)
    return True
