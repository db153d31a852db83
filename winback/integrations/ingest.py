"""Platform webhooks in: store first, commit, then start or signal.

Shopify gives a delivery 5 seconds and retries it for hours if it is not answered (dropping the
subscription after repeated failures), so a verified delivery is never failed on our side:

1. the delivery is claimed by its id (a retry is answered at once, and applies nothing twice);
2. it becomes the same cart events the storefront posts (``record_event``), in the same
   transaction, which is committed;
3. only then is the cart's workflow started or signalled (``apply_pending_changes``), within a
   short deadline. If Temporal hiccups there, the delivery still succeeds: the cart row keeps
   the change as not yet signalled, and the next event for that cart (a later checkout update,
   the order, a redelivery) or the workers' sweep (``winback.carts.redrive``) drives it.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from winback.carts.events import CartEventIn, EventIdConflict, record_event
from winback.carts.models import Cart
from winback.carts.workflow_sync import apply_pending_changes
from winback.customers.models import Customer
from winback.customers.privacy import (
    Subject,
    erase_customer_data,
    find_customers,
    record_pending_export,
    stop_workflows,
)
from winback.integrations import shopify, woocommerce
from winback.integrations.cart_links import PlatformCartLink, find_linked_cart, link_checkout
from winback.integrations.connections import PlatformConnection
from winback.integrations.deliveries import DeliveryOutcome, WebhookDelivery, claim_delivery
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.vocabulary import CartStatus

log = logging.getLogger(__name__)

DRIVE_DEADLINE_SECONDS = 2.0  # of Shopify's 5: the rest is for the database and the network
# What an unreachable or slow Temporal raises: a failed RPC, our deadline, a lazy client's
# failed connect (RuntimeError), a refused socket.
TEMPORAL_UNREACHABLE = (RPCError, TimeoutError, RuntimeError, OSError)


@dataclass
class DeliveryResult:
    duplicate: bool = False
    outcome: str = DeliveryOutcome.APPLIED
    cart_id: str | None = None
    workflow_actions: list[str] = field(default_factory=list)
    detail: str | None = None


async def ingest_shopify(
    session: AsyncSession,
    client: Client,
    *,
    settings: Settings,
    retailer: Retailer,
    connection: PlatformConnection,
    topic: str,
    delivery_id: str,
    payload: dict[str, Any],
) -> DeliveryResult:
    """One verified Shopify delivery, by topic. A signed payload Winback cannot read is
    recorded and answered (a retry would not make it readable)."""
    try:
        return await _ingest_shopify(
            session,
            client,
            settings=settings,
            retailer=retailer,
            connection=connection,
            topic=topic,
            delivery_id=delivery_id,
            payload=payload,
        )
    except (shopify.PayloadError, ValidationError) as err:
        return await _unreadable(session, retailer, shopify.SHOPIFY, topic, delivery_id, err)


async def _ingest_shopify(
    session: AsyncSession,
    client: Client,
    *,
    settings: Settings,
    retailer: Retailer,
    connection: PlatformConnection,
    topic: str,
    delivery_id: str,
    payload: dict[str, Any],
) -> DeliveryResult:
    country = connection.country or retailer.country
    delivery = await claim_delivery(
        session,
        retailer_id=retailer.id,
        platform=shopify.SHOPIFY,
        delivery_id=delivery_id,
        topic=topic,
    )
    if delivery is None:
        return await _redrive_duplicate(
            session, client, settings, retailer, shopify.SHOPIFY, delivery_id
        )
    if topic in shopify.CHECKOUT_TOPICS:
        checkout = shopify.checkout_events(payload, delivery_id=delivery_id, country=country)
        await link_checkout(
            session,
            retailer_id=retailer.id,
            platform=shopify.SHOPIFY,
            cart_id=checkout.cart_id,
            checkout_token=checkout.checkout_token,
            checkout_id=checkout.checkout_id,
            cart_token=checkout.cart_token,
        )
        return await _apply(
            session, client, settings, retailer, delivery, checkout.cart_id, checkout.events
        )
    if topic in shopify.ORDER_TOPICS:
        order = shopify.order_from_payload(payload)
        cart_id = await find_linked_cart(
            session,
            retailer_id=retailer.id,
            platform=shopify.SHOPIFY,
            checkout_token=order.checkout_token,
            checkout_id=order.checkout_id,
            cart_token=order.cart_token,
        )
        if order.cancelled or cart_id is None:
            why = "a cancelled order" if order.cancelled else "no checkout of this order is known"
            return await _ignore(session, delivery, why)
        event = shopify.order_event(order, delivery_id=delivery_id)
        return await _apply(session, client, settings, retailer, delivery, cart_id, [event])
    if topic in shopify.PRIVACY_TOPICS:
        return await _shopify_privacy(
            session, client, settings, retailer, connection, delivery, topic, payload, country
        )
    return await _ignore(session, delivery, f"topic {topic!r} is not one Winback reads")


async def ingest_woocommerce(
    session: AsyncSession,
    client: Client,
    *,
    settings: Settings,
    retailer: Retailer,
    topic: str,
    delivery_id: str,
    payload: dict[str, Any],
) -> DeliveryResult:
    """One verified WooCommerce order delivery: a paid order ends its cart as bought."""
    try:
        return await _ingest_woocommerce(
            session,
            client,
            settings=settings,
            retailer=retailer,
            topic=topic,
            delivery_id=delivery_id,
            payload=payload,
        )
    except ValidationError as err:
        return await _unreadable(
            session, retailer, woocommerce.WOOCOMMERCE, topic, delivery_id, err
        )


async def _ingest_woocommerce(
    session: AsyncSession,
    client: Client,
    *,
    settings: Settings,
    retailer: Retailer,
    topic: str,
    delivery_id: str,
    payload: dict[str, Any],
) -> DeliveryResult:
    delivery = await claim_delivery(
        session,
        retailer_id=retailer.id,
        platform=woocommerce.WOOCOMMERCE,
        delivery_id=delivery_id,
        topic=topic,
    )
    if delivery is None:
        return await _redrive_duplicate(
            session, client, settings, retailer, woocommerce.WOOCOMMERCE, delivery_id
        )
    if topic not in woocommerce.TOPICS:
        return await _ignore(session, delivery, f"topic {topic!r} is not one Winback reads")
    order = woocommerce.order_from_payload(payload)
    if not order.paid:
        return await _ignore(session, delivery, "the order is not paid yet")
    cart_id = order.cart_id or await _latest_open_cart(session, retailer.id, order.email)
    if cart_id is None or await _cart(session, retailer.id, cart_id) is None:
        return await _ignore(session, delivery, "no cart of this order is known")
    event = woocommerce.order_event(order)
    return await _apply(session, client, settings, retailer, delivery, cart_id, [event])


# --- the two halves: store, then drive -----------------------------------------------------


async def _apply(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    retailer: Retailer,
    delivery: WebhookDelivery,
    cart_id: str,
    events: list[CartEventIn],
) -> DeliveryResult:
    try:
        for event in events:
            await record_event(session, retailer=retailer, cart_id=cart_id, event=event)
    except EventIdConflict:  # the order was already credited to another cart
        return await _ignore(session, delivery, "this order was already applied to another cart")
    delivery.cart_id = cart_id
    session.add(delivery)
    await session.commit()
    actions = await drive(session, client, settings=settings, retailer=retailer, cart_id=cart_id)
    return DeliveryResult(cart_id=cart_id, workflow_actions=actions)


async def drive(
    session: AsyncSession, client: Client, *, settings: Settings, retailer: Retailer, cart_id: str
) -> list[str]:
    """Starts or signals the cart's workflow for what it has not heard; never raises for
    Temporal: what is not signalled stays flagged on the cart row for the next event."""
    cart = await _cart(session, retailer.id, cart_id)
    if cart is None:
        return []
    retailer_id = retailer.id
    try:
        async with asyncio.timeout(DRIVE_DEADLINE_SECONDS):
            actions = await apply_pending_changes(
                session, client, task_queue=settings.task_queue, retailer=retailer, cart=cart
            )
            await session.commit()
        return actions
    except TEMPORAL_UNREACHABLE as err:
        log.warning(
            "cart %s of %s stored; its workflow will be told on the next event (%s)",
            cart_id,
            retailer_id,
            type(err).__name__,
        )
        await _keep_flags(session)
        return []


async def _keep_flags(session: AsyncSession) -> None:
    """Commits the flags of the calls that did reach Temporal (each flag is set only after its
    call returned), so only what did not is re-driven."""
    try:
        await session.commit()
    except SQLAlchemyError:
        await session.rollback()


async def _redrive_duplicate(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    retailer: Retailer,
    platform: str,
    delivery_id: str,
) -> DeliveryResult:
    """A delivery seen before: nothing is applied again, but whatever its cart's workflow has
    not heard yet (Temporal was down the first time) is driven now, like a resent event."""
    row = (
        await session.exec(
            select(WebhookDelivery).where(
                WebhookDelivery.retailer_id == retailer.id,
                WebhookDelivery.platform == platform,
                WebhookDelivery.delivery_id == delivery_id,
            )
        )
    ).first()
    cart_id = row.cart_id if row else None
    actions = (
        await drive(session, client, settings=settings, retailer=retailer, cart_id=cart_id)
        if cart_id
        else []
    )
    return DeliveryResult(duplicate=True, cart_id=cart_id, workflow_actions=actions)


async def _unreadable(
    session: AsyncSession,
    retailer: Retailer,
    platform: str,
    topic: str,
    delivery_id: str,
    err: Exception,
) -> DeliveryResult:
    """Nothing of it is applied; the delivery is recorded as ignored, with why."""
    retailer_id = retailer.id
    await session.rollback()
    delivery = await claim_delivery(
        session, retailer_id=retailer_id, platform=platform, delivery_id=delivery_id, topic=topic
    )
    if delivery is None:
        return DeliveryResult(duplicate=True)
    log.warning("unreadable %s delivery %s for %s: %s", platform, delivery_id, retailer_id, err)
    return await _ignore(session, delivery, f"unreadable payload: {err}"[:500])


async def _ignore(session: AsyncSession, delivery: WebhookDelivery, why: str) -> DeliveryResult:
    delivery.outcome, delivery.detail = DeliveryOutcome.IGNORED, why
    session.add(delivery)
    await session.commit()
    return DeliveryResult(outcome=DeliveryOutcome.IGNORED, detail=why)


# --- Shopify's mandatory privacy webhooks --------------------------------------------------


async def _shopify_privacy(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    retailer: Retailer,
    connection: PlatformConnection,
    delivery: WebhookDelivery,
    topic: str,
    payload: dict[str, Any],
    country: str,
) -> DeliveryResult:
    """``customers/data_request`` waits for the retailer to download the export;
    ``customers/redact`` erases the customer; ``shop/redact`` (48 hours after the app is
    uninstalled) erases every shopper that came through this shop and forgets the shop."""
    requested_by = f"shopify:{topic}"
    delivery.outcome = DeliveryOutcome.PRIVACY
    if topic == "customers/data_request":
        found = shopify.privacy_subject(payload, country)
        subject = _subject(found)
        request = await record_pending_export(
            session,
            retailer_id=retailer.id,
            subject=subject,
            source="shopify",
            requested_by=requested_by,
            reference=found.request_id,
            settings=settings,
        )
        delivery.detail = f"privacy request {request.id}: export waiting for the retailer"
        session.add(delivery)
        await session.commit()
        return DeliveryResult(outcome=DeliveryOutcome.PRIVACY, detail=delivery.detail)
    subjects = (
        [_subject(shopify.privacy_subject(payload, country))]
        if topic == "customers/redact"
        else await _shop_subjects(session, retailer.id)
    )
    erasures = []
    for subject in subjects:
        erasures.append(
            await erase_customer_data(
                session,
                retailer=retailer,
                subject=subject,
                source="shopify",
                requested_by=requested_by,
                settings=settings,
            )
        )
    if topic == "shop/redact":
        await session.delete(connection)
    delivery.detail = f"{len(erasures)} erasure(s)"
    session.add(delivery)
    await session.commit()
    for erasure in erasures:
        try:
            async with asyncio.timeout(DRIVE_DEADLINE_SECONDS):
                await stop_workflows(client, erasure)
            await session.commit()
        except TEMPORAL_UNREACHABLE:
            await _keep_flags(session)  # the carts are opted out: their next send stops anyway
    return DeliveryResult(outcome=DeliveryOutcome.PRIVACY, detail=delivery.detail)


def _subject(found: shopify.PrivacySubject) -> Subject:
    return Subject(
        email=found.email,
        phone=found.phone,
        external_id=found.external_id,
        order_ids=tuple(found.order_ids),
    )


async def _shop_subjects(session: AsyncSession, retailer_id: str) -> list[Subject]:
    """Every shopper whose cart came from a Shopify checkout of this retailer."""
    rows = await session.exec(
        select(Customer)
        .join(Cart, col(Cart.customer_id) == col(Customer.id))
        .join(
            PlatformCartLink,
            (col(PlatformCartLink.cart_id) == col(Cart.cart_id))
            & (col(PlatformCartLink.retailer_id) == col(Cart.retailer_id)),
        )
        .where(Cart.retailer_id == retailer_id, PlatformCartLink.platform == shopify.SHOPIFY)
    )
    seen: dict[int, Subject] = {}
    for customer in rows:
        if customer.id is not None and customer.erased_at is None:
            seen[customer.id] = Subject(
                email=customer.email, phone=customer.phone, external_id=customer.external_id
            )
    return list(seen.values())


# --- lookups -------------------------------------------------------------------------------


async def _cart(session: AsyncSession, retailer_id: str, cart_id: str) -> Cart | None:
    query = select(Cart).where(Cart.retailer_id == retailer_id, Cart.cart_id == cart_id)
    return (await session.exec(query)).first()


async def _latest_open_cart(
    session: AsyncSession, retailer_id: str, email: str | None
) -> str | None:
    """The shopper's most recent open cart, for an order that does not name its cart."""
    if not email:
        return None
    customers = await find_customers(session, retailer_id=retailer_id, subject=Subject(email=email))
    ids = [c.id for c in customers]
    if not ids:
        return None
    cart = (
        await session.exec(
            select(Cart)
            .where(
                Cart.retailer_id == retailer_id,
                col(Cart.customer_id).in_(ids),
                col(Cart.status).in_((CartStatus.ACTIVE, CartStatus.ABANDONED)),
            )
            .order_by(col(Cart.last_activity_at).desc(), col(Cart.id).desc())
        )
    ).first()
    return cart.cart_id if cart else None
