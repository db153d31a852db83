"""Notifying a person (an agent, a case owner, a customer asked for a survey) exactly once.

The same send path as shopper messages (``activities.messaging.sends``): the key is claimed with
a row before the provider is called, so a retried activity never notifies twice; the outbox
writes that row sent in the claim's own transaction; and a retry that finds the claim still
``sending`` (the worker died between the claim and the mark) settles it from the provider's side
before it decides to send again, the verdict on the row's ``resolution``. The activities that
notify heartbeat (``heartbeating``), so a killed worker's attempt is retried within the
workflow's heartbeat timeout, not its whole start-to-close timeout.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import ApplicationError

from activities.messaging.sends import deliver, heartbeating, message_by_key, settle_stale_claim
from winback.messaging.channels import ChannelAdapter, OutgoingMessage
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.router import Adapters, as_router
from winback.messaging.models import Message
from winback.messaging.reconcile import EVENT_GRACE
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory, session_scope
from workflows.errors import ErrorType
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
    event_grace: timedelta = EVENT_GRACE,
) -> bool:
    """Sends once per ``key``; False if the recipient has no address on that channel.

    Raises a retryable ``SendUnsettled`` while an interrupted earlier attempt cannot be judged
    yet (its claim is younger than the lease, or SendGrid's event may still come)."""
    address = recipient.address_for(channel)
    if not address:
        return False
    async with heartbeating():
        async with session_scope(sessions) as session:
            existing = await message_by_key(session, key)
            if existing is not None and existing.status != MessageStatus.SENDING:
                return True  # sent (or failed with its reason) by an earlier attempt
            # Resolved before the claim: a failure here leaves nothing claimed.
            adapter = await as_router(adapters).adapter_for(retailer_id, channel)
            if existing is None:
                claimed = await _claim(
                    session,
                    adapter,
                    Message(
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
                    ),
                )
                if claimed is None:
                    return True  # the outbox: its row is the delivery
                row = claimed
            else:
                row = existing
            outgoing = OutgoingMessage(
                message_id=_id(row),
                retailer_id=retailer_id,
                channel=channel,
                to=row.to_address or address,
                body=row.body,
                subject=row.subject,
                categories=["winback", template.replace("_", "-")],
                twiml=twiml,
            )
            if existing is not None:
                settled = await settle_stale_claim(
                    session, adapter=adapter, row=row, outgoing=outgoing, event_grace=event_grace
                )
                if settled is not None:
                    return True
        # The claim is committed: a crash from here on is settled by the retry.
        await deliver(sessions, adapters, outgoing, at, adapter=adapter)
    return True


async def _claim(
    session: AsyncSession, adapter: ChannelAdapter, message: Message
) -> Message | None:
    """Writes the row that claims the key; None for the outbox, whose row, written sent here,
    is the delivery. A concurrent attempt that claimed the key first: ``SendUnsettled``, and
    the retry finds its row sent or settles it."""
    in_outbox = isinstance(adapter, OutboxAdapter)
    message.claimed_at = utcnow()
    if in_outbox:
        message.status, message.provider, message.sent_at = (
            MessageStatus.SENT,
            adapter.name,
            message.created_at,
        )
    session.add(message)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApplicationError(
            "another attempt claimed this notification first", type=ErrorType.SEND_UNSETTLED
        ) from None
    if in_outbox:
        message.provider_message_id = f"outbox-{message.id}"
        session.add(message)
        return None
    return message


def _id(row: Message) -> int:
    assert row.id is not None
    return row.id
