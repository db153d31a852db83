"""When a cart counts as abandoned: one rule for the workflow's first follow-up and the sweep.

A cart is abandoned once its shopper has been idle for the cadence's ``abandon_after``, and its
``abandoned_at`` is then *last activity + abandon_after*, however late somebody notices: the
funnel and the "contacted within 24 h" figures read it. Two parties notice:

- the first follow-up's send (or check) activity, when the workflow's timer for that step fires
  (``judge_abandonment``): the workflow no longer re-reads the cart at the deadline, which was a
  billed Temporal action per cart;
- the worker's periodic sweep (``mark_idle_carts_abandoned``, SQL only), so the row does not say
  ``active`` until the first follow-up is due (an hour after abandonment by default).

Both use the same conditional UPDATE (``transitions.mark_abandoned``), so neither can overwrite
an order or a newer activity, and whichever comes first sets the same time.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.cadence_store import DEFAULT_VERSION, cadence_version
from winback.carts.models import Cart
from winback.carts.transitions import is_final, mark_abandoned
from winback.platform.clock import as_utc, utcnow
from winback.platform.db import SessionFactory, session_scope
from workflows.vocabulary import CartStatus

SWEEP_BATCH = 500  # carts marked per cadence version and sweep; the next sweep does the rest


@dataclass(frozen=True)
class Abandonment:
    """The verdict for a step that is due ``delay`` after the abandonment."""

    abandoned_at: datetime | None  # None: the shopper is not idle long enough yet (or bought)
    due_at: datetime | None  # when the step is due; None for a bought or opted-out cart


async def judge_abandonment(
    session: AsyncSession,
    cart: Cart,
    *,
    abandon_after: timedelta,
    grace: timedelta,
    delay: timedelta,
    at: datetime,
) -> Abandonment:
    """Marks an active cart abandoned if its shopper has been idle ``abandon_after`` (less
    ``grace``) by ``at``, backdated; says when a step ``delay`` after the abandonment is due.

    ``grace`` spares a timer: activity that far after the time the workflow knew of still
    counts as idle (the workflow's ``ABANDON_GRACE_FRACTION``)."""
    if is_final(cart.status):
        return Abandonment(cart.abandoned_at, None)  # the step's guards stop it
    if cart.status == CartStatus.ACTIVE:
        assert cart.id is not None and cart.last_activity_at is not None
        last = as_utc(cart.last_activity_at)
        idle_at = last + abandon_after
        if idle_at - grace > at:
            return Abandonment(None, idle_at + delay)
        await mark_abandoned(session, cart_pk=cart.id, idle_since=last, at=min(idle_at, at))
        await session.refresh(cart)  # what the database holds now, whoever wrote it
        if cart.status == CartStatus.ACTIVE:  # busy again: an event committed in between
            assert cart.last_activity_at is not None
            return Abandonment(None, as_utc(cart.last_activity_at) + abandon_after + delay)
    if cart.abandoned_at is None:
        return Abandonment(None, None)
    abandoned_at = as_utc(cart.abandoned_at)
    return Abandonment(abandoned_at, abandoned_at + delay)


async def mark_idle_carts_abandoned(sessions: SessionFactory, now: datetime | None = None) -> int:
    """Marks abandoned every active cart whose journey has started and whose shopper has been
    idle for its cadence's ``abandon_after``, backdated; returns how many. Temporal hears
    nothing: the workflow learns of it from its first follow-up's activity."""
    now = now or utcnow()
    marked = 0
    async with session_scope(sessions) as session:
        groups = (
            await session.exec(
                select(Cart.retailer_id, Cart.cadence_version)
                .where(
                    col(Cart.status) == CartStatus.ACTIVE,
                    col(Cart.workflow_started).is_(True),
                )
                .distinct()
            )
        ).all()
        for retailer_id, version in groups:
            cadence = await cadence_version(
                session, retailer_id=retailer_id, version=version or DEFAULT_VERSION
            )
            if cadence is None:
                continue
            idle = (
                await session.exec(
                    select(Cart.id, Cart.last_activity_at)
                    .where(
                        col(Cart.retailer_id) == retailer_id,
                        col(Cart.cadence_version) == version
                        if version is not None
                        else col(Cart.cadence_version).is_(None),
                        col(Cart.status) == CartStatus.ACTIVE,
                        col(Cart.workflow_started).is_(True),
                        col(Cart.last_activity_at) <= now - cadence.abandon_after,
                    )
                    .order_by(col(Cart.last_activity_at))
                    .limit(SWEEP_BATCH)
                )
            ).all()
            for cart_pk, last in idle:
                assert cart_pk is not None and last is not None
                at = as_utc(last) + cadence.abandon_after
                marked += await mark_abandoned(session, cart_pk=cart_pk, idle_since=last, at=at)
    return marked
