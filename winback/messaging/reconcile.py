"""Settling a send that a crash left ``sending``: was it sent, or must it go again?

Neither SendGrid nor Twilio takes an idempotency key for a send, so a retry that finds its own
claim still ``sending`` (the worker died between the claim and the mark) has to find out what
the provider got before it decides. Per channel:

- **outbox**: the claimed row is the delivery, and it is written sent in the claim's own
  transaction, so there is nothing to settle (an old ``sending`` row is simply marked sent).
- **Twilio** (SMS, voice): the adapter lists what Twilio took for the number since the claim
  (``SentLookup``). Found: marked sent with Twilio's SID. Not found: sent again.
- **SendGrid**: there is no API to ask (the Email Activity feed is a paid add-on), but every
  email carries our message id in ``custom_args`` and SendGrid's event webhook posts it back
  (``processed``, ``delivered``, ...). An event for the message: it was sent. No event yet: wait
  up to ``EVENT_GRACE`` for one, then send again; the reason is recorded either way.

Every verdict is written to the message's ``resolution``, so an operator can see which sends a
crash touched and how each was settled.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.messaging.channels.base import ChannelAdapter, OutgoingMessage, SendReceipt, SentLookup
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.models import Message
from winback.messaging.provider_event_models import ProviderEvent
from workflows.vocabulary import MessageStatus

# An attempt that is still alive finishes its provider call (10 s timeout) within this; a
# younger claim may still be in flight, so the retry waits rather than guesses.
CLAIM_LEASE = timedelta(seconds=15)
# How long a crashed SendGrid send waits for the event webhook before it is sent again.
EVENT_GRACE = timedelta(seconds=60)

Action = Literal["sent", "resend", "wait"]


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str
    receipt: SendReceipt | None = None


async def settle(
    session: AsyncSession,
    *,
    adapter: ChannelAdapter,
    row: Message,
    outgoing: OutgoingMessage,
    now: datetime,
    last_attempt: bool,
    event_grace: timedelta = EVENT_GRACE,
) -> Verdict:
    """What to do with ``row``, a claim an earlier attempt left ``sending``."""
    claimed_at = row.claimed_at or row.created_at
    age = now - claimed_at
    if isinstance(adapter, OutboxAdapter):
        receipt = SendReceipt(provider=adapter.name, provider_message_id=f"outbox-{row.id}")
        return Verdict("sent", "outbox: the claimed row is the message", receipt)
    if age < CLAIM_LEASE and not last_attempt:
        return Verdict("wait", f"claimed {age.total_seconds():.0f}s ago: may still be in flight")
    if isinstance(adapter, SentLookup):
        found = await adapter.find_sent(outgoing, claimed_at)
        if found is not None:
            sid = found.provider_message_id
            return Verdict("sent", f"found at {adapter.name} ({sid}) after a crash", found)
        return Verdict("resend", f"not at {adapter.name} after a crash: sent again")
    event = await _provider_event(session, row)
    if event is not None:
        sid = event.payload.get("sg_message_id")
        receipt = SendReceipt(provider=adapter.name, provider_message_id=str(sid) if sid else None)
        return Verdict(
            "sent", f"{adapter.name} reported {event.type!r} for it after a crash", receipt
        )
    if age < event_grace and not last_attempt:
        return Verdict("wait", f"no {adapter.name} event yet, {age.total_seconds():.0f}s after")
    grace = int(event_grace.total_seconds())
    return Verdict(
        "resend",
        f"no {adapter.name} event within {grace}s of a crashed attempt: sent again",
    )


async def retake(session: AsyncSession, *, row: Message, now: datetime, reason: str) -> bool:
    """Takes the stale claim over for a resend, atomically: False if another attempt did
    first (its ``claimed_at`` moved) or the row was settled meanwhile."""
    result = await session.exec(
        update(Message)
        .where(
            col(Message.id) == row.id,
            col(Message.status) == MessageStatus.SENDING,
            col(Message.claimed_at) == row.claimed_at
            if row.claimed_at is not None
            else col(Message.claimed_at).is_(None),
        )
        .values(claimed_at=now, resolution=reason)
    )
    return bool(result.rowcount)


async def _provider_event(session: AsyncSession, row: Message) -> ProviderEvent | None:
    query = (
        select(ProviderEvent)
        .where(ProviderEvent.message_id == row.id, ProviderEvent.retailer_id == row.retailer_id)
        .order_by(col(ProviderEvent.id))
        .limit(1)
    )
    return (await session.exec(query)).first()
