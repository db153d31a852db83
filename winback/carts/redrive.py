"""Carts whose workflow missed a change because Temporal was unreachable, told again.

Requests that store a cart event tell the workflow after their commit and re-drive whatever an
earlier request left unsaid (the ``*_signalled`` flags). A cart whose change was stored during
an outage and that gets no later event (a Shopify checkout answered 200 while Temporal was
down, whose shopper never comes back) would wait for ever; this sweep, run by every worker
process, tells it. Every call is idempotent, and carts with an event in the last few seconds are
left to the request that is handling them.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import col, func, select
from temporalio.client import Client
from temporalio.service import RPCError

from winback.carts.abandonment import mark_idle_carts_abandoned
from winback.carts.models import Cart, CartEvent
from winback.carts.workflow_sync import apply_pending_changes
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.retailers.models import Retailer
from workflows.vocabulary import CartStatus

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=2)  # older carts with unsaid changes are left to an operator
GRACE = timedelta(seconds=10)  # a request may still be telling the workflow itself
BATCH = 200
OPEN = (CartStatus.ACTIVE, CartStatus.ABANDONED)


def _unsaid() -> object:
    """Carts whose flags say their workflow has not heard of a course change."""
    return or_(
        and_(
            col(Cart.workflow_started).is_(False),
            col(Cart.status).in_(OPEN),
            or_(col(Cart.customer_id).is_not(None), col(Cart.nudge_reason).is_not(None)),
        ),
        and_(
            col(Cart.workflow_started).is_(True),
            or_(
                and_(col(Cart.status) == CartStatus.ORDERED, col(Cart.order_signalled).is_(False)),
                and_(
                    col(Cart.status) == CartStatus.OPTED_OUT, col(Cart.opt_out_signalled).is_(False)
                ),
                and_(col(Cart.nudge_reason).is_not(None), col(Cart.nudge_signalled).is_(False)),
                and_(col(Cart.customer_id).is_not(None), col(Cart.contact_signalled).is_(False)),
            ),
        ),
    )


async def redrive_pending_carts(
    sessions: SessionFactory, client: Client, *, task_queue: str, grace: timedelta = GRACE
) -> dict[str, list[str]]:
    """Tells each recent cart's workflow what it has not heard; returns what was done, by
    workflow id. Stops at the first Temporal failure (it is still down: the next sweep)."""
    now = utcnow()
    done: dict[str, list[str]] = {}
    async with sessions() as session:
        carts = list(
            await session.exec(
                select(Cart)
                .where(_unsaid(), col(Cart.created_at) >= now - LOOKBACK)  # type: ignore[arg-type]
                .order_by(col(Cart.id))
                .limit(BATCH)
            )
        )
        for cart in carts:
            latest = (
                await session.exec(
                    select(func.max(CartEvent.received_at)).where(
                        CartEvent.retailer_id == cart.retailer_id,
                        CartEvent.cart_id == cart.cart_id,
                    )
                )
            ).one()
            if latest is not None and latest > now - grace:
                continue
            retailer = await session.get(Retailer, cart.retailer_id)
            if retailer is None:
                continue
            try:
                actions = await apply_pending_changes(
                    session, client, task_queue=task_queue, retailer=retailer, cart=cart
                )
            except (RPCError, RuntimeError, OSError) as err:
                log.warning("Temporal still unreachable (%s); next sweep", type(err).__name__)
                await session.commit()  # the flags of the calls that did go through
                break
            await session.commit()
            if actions:
                done[cart.workflow_id or cart.cart_id] = actions
    return done


async def run_redriver(
    sessions: SessionFactory, client: Client, *, task_queue: str, every: float, stop: asyncio.Event
) -> None:
    """Sweeps every ``every`` seconds until ``stop`` is set. Each sweep also marks idle carts
    abandoned (``winback.carts.abandonment``): their workflows no longer do it at the deadline."""
    while not stop.is_set():
        try:
            done = await redrive_pending_carts(sessions, client, task_queue=task_queue)
            if done:
                log.info("re-drove %d cart workflows: %s", len(done), done)
        except Exception:  # a sweep must never take the worker down; say why and go on
            log.exception("cart re-drive sweep failed")
        try:
            marked = await mark_idle_carts_abandoned(sessions)
            if marked:
                log.info("marked %d idle carts abandoned", marked)
        except Exception:
            log.exception("abandonment sweep failed")
        with contextlib.suppress(TimeoutError):  # the interval passed: sweep again
            await asyncio.wait_for(stop.wait(), timeout=every)
