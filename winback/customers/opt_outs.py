"""Opt-outs and opt-ins that arrive from outside the storefront: unsubscribe links, SendGrid
events, STOP/START texts.

Each one turns consent off (or on) for the channels it names, keeps the suppression list in step,
and, only when no channel is left to reach the shopper, marks the shopper's open carts opted out
so their workflows are told (``tell_workflows``). Otherwise the per-send consent and suppression
check is enough: the workflow simply skips the channel.
"""

from collections.abc import Iterable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from winback.carts.models import Cart
from winback.carts.workflow_sync import apply_pending_changes
from winback.customers.consent import set_consent
from winback.customers.models import Customer
from winback.messaging.models import Suppression
from winback.platform.clock import utcnow
from winback.retailers.models import Retailer
from workflows.vocabulary import PROVIDER_CHANNELS, CartStatus

CHANNELS = PROVIDER_CHANNELS
OPEN_CART_STATUSES = (CartStatus.ACTIVE, CartStatus.ABANDONED)
# Suppressions a shopper's own opt-in may lift; a wrong number or a bounce stays suppressed.
LIFTABLE_REASONS = ("opt_out", "sms_stop", "unsubscribe_link", "unsubscribe", "spam_report")


async def customers_by_address(
    session: AsyncSession, *, retailer_id: str, channel: str, address: str
) -> list[Customer]:
    field = Customer.email if channel == "email" else Customer.phone
    query = select(Customer).where(Customer.retailer_id == retailer_id, field == address)
    return list(await session.exec(query.order_by(col(Customer.id))))


async def stop_contact(
    session: AsyncSession,
    *,
    retailer_id: str,
    channels: Sequence[str],
    address: str | None,
    customers: Iterable[Customer],
    reason: str,
    withdraw_consent: bool = True,
) -> list[Cart]:
    """Suppresses ``address`` on ``channels`` and (unless it is a bounce) withdraws the
    customers' consent there. Returns the carts that are now opted out and must be told."""
    if address:
        for channel in channels:
            await _suppress(session, retailer_id, channel, address, reason)
    to_tell: list[Cart] = []
    for customer in customers:
        if withdraw_consent:
            for channel in channels:
                await set_consent(session, customer, channel, False, reason, utcnow())
        session.add(customer)
        await session.flush()
        if not await _any_channel_left(session, retailer_id, customer):
            to_tell.extend(await _opt_out_open_carts(session, retailer_id, customer))
    return to_tell


async def number_opted_out_at_twilio(
    session: AsyncSession, *, retailer_id: str, phone: str, customer_id: int | None
) -> None:
    """Twilio refused a send because the number texted STOP to the sender (error 21610): Twilio
    now blocks it, so it goes on our suppression list too and later texts and calls to it are
    skipped instead of being scheduled and refused one by one."""
    customers = await customers_by_address(
        session, retailer_id=retailer_id, channel="sms", address=phone
    )
    if customer_id is not None and all(c.id != customer_id for c in customers):
        known = await session.get(Customer, customer_id)
        if known is not None:
            customers.append(known)
    await stop_contact(
        session,
        retailer_id=retailer_id,
        channels=["sms", "voice"],
        address=phone,
        customers=customers,
        reason="sms_stop",
    )


async def resume_contact(
    session: AsyncSession,
    *,
    retailer_id: str,
    channels: Sequence[str],
    address: str,
    customers: Iterable[Customer],
    source: str,
) -> None:
    """The shopper opted back in: consent on, and the opt-out suppressions lifted."""
    lifted = await session.exec(
        select(Suppression).where(
            Suppression.retailer_id == retailer_id,
            col(Suppression.channel).in_(channels),
            Suppression.address == address,
            col(Suppression.reason).in_(LIFTABLE_REASONS),
        )
    )
    for row in lifted:
        await session.delete(row)
    for customer in customers:
        for channel in channels:
            await set_consent(session, customer, channel, True, source, utcnow())
        session.add(customer)


async def tell_workflows(
    session: AsyncSession, client: Client, *, task_queue: str, retailer: Retailer, carts: list[Cart]
) -> None:
    """Signals ``opted_out`` to the carts' workflows (idempotent: flags on the cart rows)."""
    for cart in carts:
        await apply_pending_changes(
            session, client, task_queue=task_queue, retailer=retailer, cart=cart
        )
    await session.commit()


async def _suppress(
    session: AsyncSession, retailer_id: str, channel: str, address: str, reason: str
) -> None:
    existing = await session.exec(
        select(Suppression.id).where(
            Suppression.retailer_id == retailer_id,
            Suppression.channel == channel,
            Suppression.address == address,
        )
    )
    if existing.first() is None:
        session.add(
            Suppression(retailer_id=retailer_id, channel=channel, address=address, reason=reason)
        )
        await session.flush()


async def _any_channel_left(session: AsyncSession, retailer_id: str, customer: Customer) -> bool:
    for channel in CHANNELS:
        address = customer.address_for(channel)
        if not address or not customer.consents_to(channel):
            continue
        suppressed = await session.exec(
            select(Suppression.id).where(
                Suppression.retailer_id == retailer_id,
                col(Suppression.channel).in_((channel, "all")),
                Suppression.address == address,
            )
        )
        if suppressed.first() is None:
            return True
    return False


async def _opt_out_open_carts(
    session: AsyncSession, retailer_id: str, customer: Customer
) -> list[Cart]:
    carts = list(
        await session.exec(
            select(Cart)
            .where(
                Cart.retailer_id == retailer_id,
                Cart.customer_id == customer.id,
                col(Cart.status).in_(OPEN_CART_STATUSES),
            )
            .with_for_update()  # an order committing meanwhile is seen, never overwritten
        )
    )
    now = utcnow()
    for cart in carts:
        cart.status, cart.opted_out_at = CartStatus.OPTED_OUT, now
        session.add(cart)
    return carts
