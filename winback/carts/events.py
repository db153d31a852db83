"""Cart events from the storefront: validated, stored, and turned into as few signals as possible.

``record_event`` writes the event and the cart's latest snapshot in one transaction (a resent
event id is a no-op; an older event never overwrites a newer snapshot). ``pending_changes``
then compares the cart with the flags of what its workflow has been told, and lists only the
course changes it has not heard of yet: start, contact known, nudge trigger, order, opt-out.
Minor edits (items, page views) change the row and nothing in Temporal.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.attribution import TOUCH_STATUSES, attributed_touch
from winback.carts.holdout import assign_group, decide_group
from winback.carts.models import Cart, CartEvent
from winback.customers.consent import set_consent
from winback.customers.identity import (
    ConsentIn,
    CustomerIn,
    normalize_national_phone,
    upsert_customer,
)
from winback.customers.models import Customer
from winback.messaging.models import Message, Suppression
from winback.platform.clock import as_utc, utcnow
from winback.platform.db import WRITE_ATTEMPTS, is_write_conflict
from winback.platform.text_input import refuse_nul
from winback.retailers.lookups import RetailerIdentity
from winback.retailers.models import Retailer
from workflows.vocabulary import (
    PROVIDER_CHANNELS,
    CartStatus,
    Channel,
    MessageStatus,
    ProviderChannel,
)

EventType = Literal[
    "item_added",
    "item_removed",
    "activity",
    "idle",
    "exit_intent",
    "checkout_started",
    "order_placed",
    "opt_out",
    "nudge_reply",
]
ACTIVITY_EVENTS = {"item_added", "item_removed", "activity", "checkout_started", "nudge_reply"}
NUDGE_EVENTS = {"idle", "exit_intent"}
CART_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
MAX_AMOUNT = 1e12  # per unit or order: keeps cart totals finite (a huge price made them inf)
MAX_EVENT_AGE = timedelta(days=365)  # carts expire within 60 days; older dates are mistakes
CONFUSION_ADD_REMOVE = 3  # this many removals in one cart reads as a shopper who cannot decide


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartItem(_Strict):
    sku: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=500)
    quantity: int = Field(default=1, ge=1, le=10000)
    price: float = Field(ge=0, le=MAX_AMOUNT, description="Unit price.")
    product_id: str | None = Field(
        default=None, max_length=200, description="Several SKUs of one product read as confusion."
    )
    category: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)


class OrderIn(_Strict):
    order_id: str = Field(min_length=1, max_length=200)
    value: float = Field(ge=0, le=MAX_AMOUNT)


class CartEventIn(_Strict):
    """One storefront event. Item events carry the whole cart as it is after the change."""

    event_id: str = Field(
        min_length=1, max_length=200, description="Unique per event; resends are ignored."
    )
    type: EventType
    occurred_at: datetime | None = Field(default=None, description="Defaults to the time received.")
    items: list[CartItem] | None = Field(default=None, max_length=500)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", max_length=3)
    page: str | None = Field(default=None, max_length=2000)
    cart_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="The link back to this cart in messages (else the retailer's template).",
    )
    customer: CustomerIn | None = None
    consent: ConsentIn | None = None
    order: OrderIn | None = None
    reply: Literal["chat", "callback", "dismiss"] | None = None
    channels: list[ProviderChannel] | None = Field(
        default=None, max_length=3, description="opt_out: the channels; all of them if unset."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return refuse_nul(data)

    @model_validator(mode="after")
    def _required_parts(self) -> Self:
        if self.type in ("item_added", "item_removed") and self.items is None:
            raise ValueError(f"'{self.type}' needs 'items': the whole cart after the change")
        if self.type == "order_placed" and self.order is None:
            raise ValueError("'order_placed' needs 'order' with order_id and value")
        if self.type == "nudge_reply" and self.reply is None:
            raise ValueError("'nudge_reply' needs 'reply': chat, callback or dismiss")
        if self.occurred_at is not None:
            try:
                self.occurred_at = as_utc(self.occurred_at)
            except OverflowError:  # year 1 or 9999 with an offset
                raise ValueError("'occurred_at' is out of range") from None
            if self.occurred_at > utcnow() + timedelta(minutes=5):
                raise ValueError("'occurred_at' is in the future")
            if self.occurred_at < utcnow() - MAX_EVENT_AGE:
                raise ValueError("'occurred_at' is more than a year ago")
        return self


class EventIdConflict(ValueError):
    """The event id was already used for another cart."""


@dataclass
class RecordedEvent:
    cart: Cart
    duplicate: bool
    group_decided: bool = False  # this event decided the cart's holdout group


STORE_ATTEMPTS = WRITE_ATTEMPTS


async def store_event(
    session: AsyncSession,
    *,
    retailer: RetailerIdentity,
    cart_id: str,
    event: CartEventIn,
    also: Callable[[RecordedEvent], None] | None = None,
) -> RecordedEvent:
    """Records the event and commits it, retrying when a concurrent request for the same cart
    wins a race: the retry then finds the cart (or the event: a duplicate) that request made.

    A rollback expires every object in the session, the caller's retailer too; it is read
    again before the retry (an expired attribute would be loaded lazily, which async sessions
    cannot do: that was the ``MissingGreenlet`` behind the 500s). ``also`` changes the recorded
    cart in the same transaction (e.g. what the browser route knows of its visitor)."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            recorded = await record_event(session, retailer=retailer, cart_id=cart_id, event=event)
            if also is not None:
                also(recorded)
                cart = recorded.cart
                if recorded.group_decided and cart.customer_id is None and cart.visitor_hash:
                    # An anonymous browser's first event: ``also`` only now told us the
                    # browser, which is a better "same shopper" than the cart. Nothing has
                    # been touched yet (this transaction has not committed).
                    await assign_group(session, retailer, cart, None)
                    session.add(cart)
            await session.commit()
            return recorded
        except (IntegrityError, OperationalError) as err:
            await session.rollback()
            if attempt == STORE_ATTEMPTS or not is_write_conflict(err):
                raise
            if isinstance(retailer, Retailer) and retailer in session:
                await session.refresh(retailer)
    raise AssertionError("unreachable")


async def record_event(
    session: AsyncSession, *, retailer: RetailerIdentity, cart_id: str, event: CartEventIn
) -> RecordedEvent:
    """Stores the event and updates the cart snapshot. Caller commits (``store_event`` does,
    with retries)."""
    normalize_national_phone(event.customer, retailer.country)
    now = utcnow()
    occurred_at = event.occurred_at or now
    seen = (
        await session.exec(
            select(CartEvent).where(
                CartEvent.retailer_id == retailer.id, CartEvent.event_id == event.event_id
            )
        )
    ).first()
    if seen is not None:
        if seen.cart_id != cart_id:
            raise EventIdConflict(f"event_id {event.event_id!r} was already used for another cart")
        existing = await _find_cart(session, retailer.id, cart_id)
        assert existing is not None
        return RecordedEvent(cart=existing, duplicate=True)
    cart = await _get_or_create_cart(session, retailer.id, cart_id, occurred_at)
    session.add(
        CartEvent(
            retailer_id=retailer.id,
            cart_id=cart_id,
            event_id=event.event_id,
            type=event.type,
            occurred_at=occurred_at,
            received_at=now,
            payload=event.model_dump(mode="json", exclude_none=True),
        )
    )
    await session.flush()  # a concurrent resend loses here on the unique event id

    if event.customer is not None or event.consent is not None:
        await _update_customer(session, retailer.id, cart, event.customer, event.consent)

    is_newest = cart.snapshot_at is None or occurred_at >= cart.snapshot_at
    if event.items is not None and is_newest:
        cart.items = [item.model_dump(exclude_none=True) for item in event.items]
        cart.value = round(sum(i.price * i.quantity for i in event.items), 2)
        cart.currency = event.currency
        cart.snapshot_at = occurred_at
    if event.cart_url is not None and is_newest:
        cart.link_url = event.cart_url
    newer_activity = cart.last_activity_at is None or occurred_at >= cart.last_activity_at
    if event.type in ACTIVITY_EVENTS and newer_activity:
        cart.last_activity_at = occurred_at
        cart.last_page = event.page or cart.last_page
    if event.type == "item_removed":
        cart.add_remove_count += 1

    if cart.status == CartStatus.ACTIVE and cart.nudge_reason is None:
        if event.type in NUDGE_EVENTS:
            cart.nudge_reason = event.type
        elif _looks_confused(cart):
            cart.nudge_reason = "confusion"

    if event.type == "order_placed" and cart.status != CartStatus.ORDERED:
        assert event.order is not None
        await _place_order(session, cart, event.order, occurred_at)
    elif event.type == "opt_out":
        await _opt_out(session, retailer.id, cart, event.channels, occurred_at)
    elif event.type == "nudge_reply":
        await _record_nudge_reply(session, retailer.id, cart_id, event.reply)
        finished = cart.status in (CartStatus.ORDERED, CartStatus.OPTED_OUT)
        if event.reply == "callback" and not finished:
            cart.callback_requested = True

    decided = False
    if cart.holdout_bucket is None and not cart.workflow_started:
        customer = await session.get(Customer, cart.customer_id) if cart.customer_id else None
        decided = await decide_group(session, retailer, cart, customer)

    session.add(cart)
    await session.flush()
    return RecordedEvent(cart=cart, duplicate=False, group_decided=decided)


def _looks_confused(cart: Cart) -> bool:
    """Several variants of one product in the cart, or repeated add/remove."""
    variants: dict[str, set[str]] = defaultdict(set)
    for item in cart.items:
        if item.get("product_id"):
            variants[item["product_id"]].add(item["sku"])
    several = any(len(skus) > 1 for skus in variants.values())
    return several or cart.add_remove_count >= CONFUSION_ADD_REMOVE


async def _find_cart(session: AsyncSession, retailer_id: str, cart_id: str) -> Cart | None:
    query = select(Cart).where(Cart.retailer_id == retailer_id, Cart.cart_id == cart_id)
    return (await session.exec(query.with_for_update())).first()


async def _get_or_create_cart(
    session: AsyncSession, retailer_id: str, cart_id: str, occurred_at: datetime
) -> Cart:
    cart = await _find_cart(session, retailer_id, cart_id)
    if cart is not None:
        return cart
    cart = Cart(retailer_id=retailer_id, cart_id=cart_id, last_activity_at=occurred_at)
    session.add(cart)
    await session.flush()
    return cart


async def _update_customer(
    session: AsyncSession,
    retailer_id: str,
    cart: Cart,
    given: CustomerIn | None,
    consent: ConsentIn | None,
) -> None:
    existing = await session.get(Customer, cart.customer_id) if cart.customer_id else None
    customer = await upsert_customer(
        session, retailer_id=retailer_id, given=given, consent=consent, existing=existing
    )
    cart.customer_id = customer.id


async def _place_order(session: AsyncSession, cart: Cart, order: OrderIn, at: datetime) -> None:
    """Marks the cart ordered and credits the last touch within its channel's attribution
    window (``winback.carts.attribution``)."""
    from winback.carts.cadence import CadenceIn, default_cadence
    from winback.carts.cadence_store import cadence_version  # avoids an import cycle at load

    cart.status = CartStatus.ORDERED
    cart.ordered_at, cart.order_id, cart.order_value = at, order.order_id, order.value
    stored = None
    if cart.cadence_version is not None:
        stored = await cadence_version(
            session, retailer_id=cart.retailer_id, version=cart.cadence_version
        )
    cadence: CadenceIn = stored or default_cadence()
    longest = max(cadence.window_for(channel) for channel in Channel)
    touches = (
        await session.exec(
            select(Message).where(
                Message.retailer_id == cart.retailer_id,
                Message.cart_id == cart.cart_id,
                col(Message.status).in_(TOUCH_STATUSES),
                col(Message.created_at) <= at,
                col(Message.created_at) >= at - longest,
            )
        )
    ).all()
    touch = attributed_touch(at, touches, cadence.window_for)
    if touch is not None:
        cart.recovered_step, cart.recovered_channel = touch.step_index, touch.channel


async def _opt_out(
    session: AsyncSession,
    retailer_id: str,
    cart: Cart,
    channels: list[ProviderChannel] | None,
    at: datetime,
) -> None:
    chosen: list[ProviderChannel] = channels or [Channel.EMAIL, Channel.SMS, Channel.VOICE]
    customer = await session.get(Customer, cart.customer_id) if cart.customer_id else None
    if customer is not None:
        for channel in chosen:
            await set_consent(session, customer, channel, False, "cart_event", at)
            address = customer.address_for(channel)
            if address and not await _suppressed(session, retailer_id, channel, address):
                session.add(
                    Suppression(
                        retailer_id=retailer_id, channel=channel, address=address, reason="opt_out"
                    )
                )
        session.add(customer)
    if set(chosen) == set(PROVIDER_CHANNELS) and cart.status != CartStatus.ORDERED:
        cart.status, cart.opted_out_at = CartStatus.OPTED_OUT, at


async def _suppressed(session: AsyncSession, retailer_id: str, channel: str, address: str) -> bool:
    query = select(Suppression.id).where(
        Suppression.retailer_id == retailer_id,
        Suppression.channel == channel,
        Suppression.address == address,
    )
    return (await session.exec(query)).first() is not None


async def _record_nudge_reply(
    session: AsyncSession, retailer_id: str, cart_id: str, reply: str | None
) -> None:
    nudge = (
        await session.exec(
            select(Message)
            .where(
                Message.retailer_id == retailer_id,
                Message.cart_id == cart_id,
                Message.channel == "onsite",
                Message.status != MessageStatus.HELD_OUT,  # never shown: nothing to answer
            )
            .order_by(col(Message.id).desc())
            .limit(1)
        )
    ).first()
    if nudge is not None:
        nudge.reply = reply
        nudge.status = MessageStatus.DISMISSED if reply == "dismiss" else MessageStatus.ACCEPTED
        session.add(nudge)


# --- what the workflow still has to hear ---------------------------------------------------


@dataclass(frozen=True)
class PendingChanges:
    start: bool = False
    contact_known: bool = False
    nudge_reason: str | None = None
    order: bool = False
    opt_out: bool = False
    callback: bool = False

    @property
    def any(self) -> bool:
        return (
            self.start
            or self.contact_known
            or bool(self.nudge_reason)
            or self.order
            or self.opt_out
            or self.callback
        )


def has_contact(customer: Customer | None) -> bool:
    return customer is not None and bool(customer.email or customer.phone)


class CartFlags(Protocol):
    """What ``pending_changes`` reads: a ``Cart`` row, or the fast path's ``CartRow``."""

    status: str
    nudge_reason: str | None
    workflow_started: bool
    contact_signalled: bool
    nudge_signalled: bool
    order_signalled: bool
    opt_out_signalled: bool
    callback_requested: bool
    callback_signalled: bool


def pending_changes(cart: CartFlags, *, contact: bool) -> PendingChanges:
    """The course changes the cart's workflow has not been told about (nothing for edits);
    ``contact``: the cart's customer has an email or a phone (``has_contact``)."""
    contact = contact or (cart.workflow_started and cart.contact_signalled)
    finished = cart.status in (CartStatus.ORDERED, CartStatus.OPTED_OUT)
    if not cart.workflow_started:
        if finished or not (contact or cart.nudge_reason):
            return PendingChanges()
        return PendingChanges(start=True, nudge_reason=cart.nudge_reason)
    return PendingChanges(
        contact_known=contact and not cart.contact_signalled,
        nudge_reason=cart.nudge_reason if not cart.nudge_signalled else None,
        order=cart.status == CartStatus.ORDERED and not cart.order_signalled,
        opt_out=cart.status == CartStatus.OPTED_OUT and not cart.opt_out_signalled,
        callback=cart.callback_requested and not cart.callback_signalled,
    )
