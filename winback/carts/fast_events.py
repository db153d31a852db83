"""The ingestion fast path: a storefront event that only changes the cart row, in Core SQL.

Most events a storefront sends are page views and cart edits without any contact, order or
opt-out. For those, ``record_event``'s ORM round-trips (select the event, select the cart, flush
the event, flush the cart: each a unit of work with its identity map and change tracking) were
most of an event's cost. Here one such event is three statements in one transaction:

1. ``INSERT`` the event, ``ON CONFLICT DO NOTHING`` on the unique (retailer, event id): a resend
   inserts nothing and is answered as a duplicate. It is the transaction's first statement, so on
   SQLite the write lock is taken (waiting on ``busy_timeout``) before anything is read: no
   snapshot older than the lock, hence none of the "database is locked" refusals that a read
   followed by a write gets when another writer committed in between;
2. ``SELECT`` the cart (``FOR UPDATE`` on PostgreSQL), or ``INSERT`` it (``ON CONFLICT DO
   NOTHING``, then select it again: a concurrent first event made it);
3. ``UPDATE`` only the columns that change, decided by the same rules as ``record_event``: an
   older event never overwrites a newer snapshot, activity only moves forward, the nudge reason
   is set once.

Anything else (contact or consent, orders, opt-outs, nudge replies) goes through
``record_event``: ``is_simple`` decides. Both write the same rows; the tests of the event routes
hold for both.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from winback.carts.events import (
    ACTIVITY_EVENTS,
    CONFUSION_ADD_REMOVE,
    NUDGE_EVENTS,
    STORE_ATTEMPTS,
    CartEventIn,
    EventIdConflict,
    is_write_conflict,
    pending_changes,
)
from winback.carts.models import Cart, CartEvent
from winback.platform.clock import utcnow
from winback.platform.db import sqlite_writer
from winback.retailers.lookups import RetailerIdentity
from workflows.vocabulary import CartStatus

CART: Table = Cart.__table__  # type: ignore[attr-defined]
EVENT: Table = CartEvent.__table__  # type: ignore[attr-defined]
SLOW_TYPES = {"order_placed", "opt_out", "nudge_reply"}


def is_simple(event: CartEventIn) -> bool:
    """An event that changes only the cart row (no customer, order, opt-out or nudge reply)."""
    return event.customer is None and event.consent is None and event.type not in SLOW_TYPES


class NotOwned(Exception):
    """The cart belongs to another browser (``visitor_hash``)."""


@dataclass
class CartRow:
    """The cart as the fast path left it: what ``pending_changes`` and the answer need."""

    id: int
    cart_id: str
    customer_id: int | None
    status: str
    nudge_reason: str | None
    workflow_id: str | None
    workflow_started: bool
    contact_signalled: bool
    nudge_signalled: bool
    order_signalled: bool
    opt_out_signalled: bool
    callback_requested: bool
    callback_signalled: bool
    visitor_hash: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> "CartRow":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass
class FastRecorded:
    cart: CartRow
    duplicate: bool


def _insert(conn: AsyncConnection, table: Table) -> Any:
    dialect = conn.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def _cart_row(conn: AsyncConnection, retailer_id: str, cart_id: str) -> dict[str, Any] | None:
    query = select(CART).where(CART.c.retailer_id == retailer_id, CART.c.cart_id == cart_id)
    row = (await conn.execute(query.with_for_update())).mappings().first()
    return None if row is None else dict(row)


def _new_cart_values(retailer_id: str, cart_id: str, event: CartEventIn, at: Any) -> dict[str, Any]:
    """Every column of a new cart with the model's own defaults (``Cart`` decides them)."""
    values = Cart(retailer_id=retailer_id, cart_id=cart_id, last_activity_at=at).model_dump()
    values.pop("id")
    return values


def _looks_confused(items: Sequence[dict[str, Any]], add_remove_count: int) -> bool:
    variants: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.get("product_id"):
            variants[item["product_id"]].add(item["sku"])
    return any(len(s) > 1 for s in variants.values()) or add_remove_count >= CONFUSION_ADD_REMOVE


def changes_for(cart: dict[str, Any], event: CartEventIn, occurred_at: Any) -> dict[str, Any]:
    """The columns this event changes, by ``record_event``'s rules (for simple events)."""
    changes: dict[str, Any] = {}
    is_newest = cart["snapshot_at"] is None or occurred_at >= cart["snapshot_at"]
    items = cart["items"]
    if event.items is not None and is_newest:
        items = [item.model_dump(exclude_none=True) for item in event.items]
        changes["items"] = items
        changes["value"] = round(sum(i.price * i.quantity for i in event.items), 2)
        changes["currency"] = event.currency
        changes["snapshot_at"] = occurred_at
    if event.cart_url is not None and is_newest:
        changes["link_url"] = event.cart_url
    last = cart["last_activity_at"]
    if event.type in ACTIVITY_EVENTS and (last is None or occurred_at >= last):
        changes["last_activity_at"] = occurred_at
        if event.page and event.page != cart["last_page"]:
            changes["last_page"] = event.page
    add_remove = cart["add_remove_count"]
    if event.type == "item_removed":
        add_remove += 1
        changes["add_remove_count"] = add_remove
    if cart["status"] == CartStatus.ACTIVE and cart["nudge_reason"] is None:
        if event.type in NUDGE_EVENTS:
            changes["nudge_reason"] = event.type
        elif _looks_confused(items, add_remove):
            changes["nudge_reason"] = "confusion"
    return changes


async def record_simple_event(
    session: AsyncSession,
    *,
    retailer: RetailerIdentity,
    cart_id: str,
    event: CartEventIn,
    visitor_hash: str | None = None,
) -> FastRecorded:
    """Stores a simple event (``is_simple``) and updates its cart, in the caller's transaction.

    With ``visitor_hash`` (the browser routes), the cart must be unclaimed or that browser's,
    and is claimed for it: ``NotOwned`` otherwise."""
    conn = await session.connection()  # Core statements in the session's transaction
    now = utcnow()
    occurred_at = event.occurred_at or now
    inserted = await conn.execute(
        _insert(conn, EVENT)
        .values(
            retailer_id=retailer.id,
            cart_id=cart_id,
            event_id=event.event_id,
            type=event.type,
            occurred_at=occurred_at,
            received_at=now,
            payload=event.model_dump(mode="json", exclude_none=True),
        )
        .on_conflict_do_nothing(index_elements=["retailer_id", "event_id"])
        .returning(EVENT.c.id)
    )
    if inserted.scalar() is None:  # a resend
        seen = await conn.execute(
            select(EVENT.c.cart_id).where(
                EVENT.c.retailer_id == retailer.id, EVENT.c.event_id == event.event_id
            )
        )
        if seen.scalar_one() != cart_id:
            raise EventIdConflict(f"event_id {event.event_id!r} was already used for another cart")
        cart = await _cart_row(conn, retailer.id, cart_id)
        assert cart is not None
        if visitor_hash is not None and cart["visitor_hash"] not in (None, visitor_hash):
            raise NotOwned(cart_id)
        return FastRecorded(CartRow.of(cart), duplicate=True)

    cart = await _cart_row(conn, retailer.id, cart_id)
    if cart is None:
        values = _new_cart_values(retailer.id, cart_id, event, occurred_at)
        await conn.execute(
            _insert(conn, CART)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["retailer_id", "cart_id"])
        )
        cart = await _cart_row(conn, retailer.id, cart_id)
        assert cart is not None
    if visitor_hash is not None and cart["visitor_hash"] not in (None, visitor_hash):
        raise NotOwned(cart_id)
    changes = changes_for(cart, event, occurred_at)
    if visitor_hash is not None and cart["visitor_hash"] is None:
        changes["visitor_hash"] = visitor_hash
    if changes:
        await conn.execute(update(CART).where(CART.c.id == cart["id"]).values(**changes))
        cart.update(changes)
    return FastRecorded(CartRow.of(cart), duplicate=False)


def needs_workflow(cart: CartRow) -> bool:
    """Whether the cart's workflow may have something to hear (then ``tell_workflow`` decides
    on the ORM row): a known customer it was not told about, or a pending course change."""
    if cart.customer_id is not None and not (cart.workflow_started and cart.contact_signalled):
        return True
    return pending_changes(cart, None).any


async def commit_with_retries(
    session: AsyncSession, work: Callable[[], Any], attempts: int = STORE_ATTEMPTS
) -> Any:
    """Runs ``work`` (statements on ``session``) and commits; the whole of it again when a
    concurrent writer won (``is_write_conflict``): nothing is half-applied, since a rollback
    undoes every statement of the attempt. On SQLite the attempt holds the process's writer
    lock (``sqlite_writer``) from its first statement to its commit."""
    for attempt in range(1, attempts + 1):
        try:
            async with sqlite_writer(session):
                result = await work()
                await session.commit()
            return result
        except (IntegrityError, OperationalError) as err:
            await session.rollback()
            if attempt == attempts or not is_write_conflict(err):
                raise
    raise AssertionError("unreachable")
