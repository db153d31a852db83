"""Cart status changes as single conditional statements, so no retry can undo a purchase.

A status is read by one party (the API, an activity retried after a crash) and written by
another; a read-then-write from the ORM would overwrite whatever committed in between (an
activity that read ``active`` wrote ``abandoned`` over an order). Each change here is one
``UPDATE ... WHERE status IN (<the statuses it may leave>)``: the database decides, under its
row lock, whether the change still applies, and a final status (ordered, opted out) is left by
nothing.
"""

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.models import Cart
from workflows.vocabulary import CartStatus

FINAL_STATUSES = (CartStatus.ORDERED, CartStatus.OPTED_OUT)


async def mark_abandoned(
    session: AsyncSession, *, cart_pk: int, idle_since: datetime, at: datetime
) -> bool:
    """Active and idle since ``idle_since`` → abandoned at ``at``; False if it no longer was
    (bought, opted out, busy again, or already abandoned by an earlier attempt)."""
    result = await session.exec(
        update(Cart)
        .where(
            col(Cart.id) == cart_pk,
            col(Cart.status) == CartStatus.ACTIVE,
            col(Cart.last_activity_at) <= idle_since,
        )
        .values(status=CartStatus.ABANDONED, abandoned_at=at)
    )
    return bool(result.rowcount)


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
