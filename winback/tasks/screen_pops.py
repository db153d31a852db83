"""Screen pop: a shopper calls the store, and the agents who will answer see who it is first.

The inbound-call webhook records one ``ScreenPop`` per call: the caller found by their number,
routed to a queue by the skills of their open cart (its product categories, their language) as a
call task would be. Each console polls for pops newer than the last it showed, so a pop reaches
agents served by any API process.
"""

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.customers.phones import normalize_phone
from winback.customers.view import OPEN_CART_STATUSES, find_customers
from winback.retailers.models import Retailer
from winback.tasks.agent_models import Agent
from winback.tasks.inbox import retailer_queues
from winback.tasks.routing import choose_queue, skills_for_cart
from winback.tasks.screen_pop_models import ScreenPop

MAX_POPS = 5


async def _latest_open_cart(
    session: AsyncSession, retailer_id: str, customer: Customer
) -> Cart | None:
    rows = await session.exec(
        select(Cart)
        .where(
            Cart.retailer_id == retailer_id,
            Cart.customer_id == customer.id,
            col(Cart.status).in_(OPEN_CART_STATUSES),
        )
        .order_by(col(Cart.last_activity_at).desc(), col(Cart.created_at).desc())
        .limit(1)
    )
    return rows.first()


async def record_inbound_call(
    session: AsyncSession, *, retailer: Retailer, call_sid: str, caller: str, at: datetime
) -> ScreenPop:
    """Finds the caller and the queue that should answer them, once per call (Twilio retries
    a webhook it got no answer to)."""
    existing = (
        await session.exec(
            select(ScreenPop).where(
                ScreenPop.retailer_id == retailer.id, ScreenPop.call_sid == call_sid
            )
        )
    ).first()
    if existing is not None:
        return existing
    try:
        number = normalize_phone(caller, retailer.country)
    except ValueError:  # withheld ("anonymous") or not a phone number: nobody to look up
        number = None
    customers = (
        await find_customers(session, retailer_id=retailer.id, phone=number) if number else []
    )
    customer = customers[0] if customers else None
    cart = await _latest_open_cart(session, retailer.id, customer) if customer else None
    needed = skills_for_cart(cart.items if cart else [], customer)
    queues = await retailer_queues(session, retailer_id=retailer.id)
    pop = ScreenPop(
        retailer_id=retailer.id,
        call_sid=call_sid,
        caller=(number or caller)[:40],
        customer_id=customer.id if customer else None,
        queue=choose_queue(queues, sorted(needed)),
        created_at=at,
    )
    session.add(pop)
    await session.flush()
    return pop


async def latest_pop_id(session: AsyncSession, *, retailer_id: str) -> int:
    rows = await session.exec(
        select(ScreenPop.id)
        .where(ScreenPop.retailer_id == retailer_id)
        .order_by(col(ScreenPop.id).desc())
        .limit(1)
    )
    return rows.first() or 0


async def pops_for(session: AsyncSession, *, agent: Agent, after_id: int) -> list[ScreenPop]:
    """Calls newer than ``after_id`` that this agent should see: those routed to one of its
    queues; a supervisor sees every call of the retailer."""
    statement = select(ScreenPop).where(
        ScreenPop.retailer_id == agent.retailer_id, col(ScreenPop.id) > after_id
    )
    if not agent.is_supervisor:
        statement = statement.where(col(ScreenPop.queue).in_(agent.queues or []))
    rows = await session.exec(statement.order_by(col(ScreenPop.id)).limit(MAX_POPS))
    return list(rows)
