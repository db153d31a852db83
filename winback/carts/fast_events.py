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

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import String, Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel.ext.asyncio.session import AsyncSession as ModelSession

from winback.carts.events import (
    ACTIVITY_EVENTS,
    CONFUSION_ADD_REMOVE,
    NUDGE_EVENTS,
    STORE_ATTEMPTS,
    CartEventIn,
    EventIdConflict,
    pending_changes,
)
from winback.carts.holdout import decide_group
from winback.carts.models import Cart, CartEvent
from winback.platform.clock import utcnow
from winback.platform.db import SerialisedJSON, is_write_conflict, sqlite_writer
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


# What the fast path reads of a cart: the columns ``changes_for``, ``becomes_touchable`` and
# ``CartRow`` use (reading all 35 cost their result processing, JSON and datetimes, per cart).
READ_COLUMNS = tuple(
    dict.fromkeys(
        (
            *CartRow.__dataclass_fields__,
            "items",
            "snapshot_at",
            "last_activity_at",
            "last_page",
            "add_remove_count",
            "holdout_bucket",
        )
    )
)
# What a brand-new cart row is inserted with: the columns ``changes_for`` (or the claim) may set,
# plus those whose default is not NULL. Every row of one executemany needs the same columns.
CHANGEABLE_COLUMNS = (
    "items",
    "value",
    "currency",
    "snapshot_at",
    "link_url",
    "last_activity_at",
    "last_page",
    "add_remove_count",
    "nudge_reason",
    "visitor_hash",
)


@dataclass(frozen=True)
class _Statements:
    """Built once per dialect and executed with parameters: building a statement with its
    values inlined for every event (and its cache key) was a visible part of an event's CPU."""

    insert_event: Any
    insert_cart: Any
    insert_new_carts: Any
    select_ids: Any
    select_cart: Any
    select_carts: Any


@cache
def _statements_for(dialect: str) -> _Statements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The payload arrives as JSON text (``model_dump_json``): bound as it is, not re-encoded.
    events = insert(EVENT).values(payload=bindparam("payload", type_=SerialisedJSON()))
    events = events.on_conflict_do_nothing(index_elements=["retailer_id", "event_id"])
    columns = [CART.c[name] for name in READ_COLUMNS]
    return _Statements(
        insert_event=events.returning(EVENT.c.id),
        insert_cart=insert(CART).on_conflict_do_nothing(index_elements=["retailer_id", "cart_id"]),
        # No ON CONFLICT: a concurrent first event of the same cart makes this fail with a
        # unique violation, and ``commit_with_retries`` does the whole batch again (then the
        # cart is found and updated like any other).
        insert_new_carts=insert(CART),
        select_ids=select(CART.c.id, CART.c.cart_id).where(
            CART.c.retailer_id == bindparam("r"),
            CART.c.cart_id.in_(bindparam("c", expanding=True)),
        ),
        select_cart=select(*columns)
        .where(CART.c.retailer_id == bindparam("r"), CART.c.cart_id == bindparam("c"))
        .with_for_update(),
        select_carts=select(*columns)
        .where(
            CART.c.retailer_id == bindparam("r"),
            CART.c.cart_id.in_(bindparam("c", expanding=True)),
        )
        .with_for_update(),
    )


def _statements(conn: AsyncConnection) -> _Statements:
    return _statements_for(conn.dialect.name)


@cache
def _update_of(columns: tuple[str, ...]) -> Any:
    """``UPDATE cart SET <columns> WHERE id = :cart_pk``, one per set of changed columns."""
    return (
        update(CART)
        .where(CART.c.id == bindparam("cart_pk"))
        .values({c: bindparam(f"new_{c}") for c in columns})
    )


async def _cart_row(conn: AsyncConnection, retailer_id: str, cart_id: str) -> dict[str, Any] | None:
    result = await conn.execute(_statements(conn).select_cart, {"r": retailer_id, "c": cart_id})
    row = result.first()
    return None if row is None else dict(zip(READ_COLUMNS, row, strict=True))


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
    session: ModelSession,
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
        _statements(conn).insert_event,
        {
            "retailer_id": retailer.id,
            "cart_id": cart_id,
            "event_id": event.event_id,
            "type": event.type,
            "occurred_at": occurred_at,
            "received_at": now,
            "payload": event.model_dump_json(exclude_none=True),
        },
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
        await conn.execute(_statements(conn).insert_cart, values)
        cart = await _cart_row(conn, retailer.id, cart_id)
        assert cart is not None
    if visitor_hash is not None and cart["visitor_hash"] not in (None, visitor_hash):
        raise NotOwned(cart_id)
    changes = changes_for(cart, event, occurred_at)
    if visitor_hash is not None and cart["visitor_hash"] is None:
        changes["visitor_hash"] = visitor_hash
    if changes:
        columns = tuple(sorted(changes))
        await conn.execute(
            _update_of(columns),
            {"cart_pk": cart["id"], **{f"new_{c}": changes[c] for c in columns}},
        )
        cart.update(changes)
        if becomes_touchable(cart, changes):
            await decide_groups(session, retailer, [cart])
    return FastRecorded(CartRow.of(cart), duplicate=False)


def becomes_touchable(cart: dict[str, Any], changes: dict[str, Any]) -> bool:
    """This event made an ungrouped cart's on-site nudge due: its holdout group is decided now,
    before any workflow hears of it (``holdout.decide_group``: once per cart)."""
    return (
        "nudge_reason" in changes
        and cart["holdout_bucket"] is None
        and not cart["workflow_started"]
    )


async def decide_groups(
    session: ModelSession, retailer: RetailerIdentity, carts: Sequence[dict[str, Any]]
) -> None:
    """The holdout groups of carts that just became touchable: the one moment of a cart's life
    that leaves the Core path (an ORM read of the row and its write), so that the held-out
    guard and the report agree with the slow path's carts."""
    for cart in carts:
        row = await session.get(Cart, cart["id"], populate_existing=True)
        if row is not None and await decide_group(session, retailer, row, None):
            session.add(row)
            await session.flush()
            cart["holdout_bucket"], cart["holdout_group"] = row.holdout_bucket, row.holdout_group


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


_EVENT_COLUMNS = ("retailer_id", "cart_id", "event_id", "type", "occurred_at", "received_at")


@cache
def _insert_event_rows(dialect: str) -> Any:
    """The batch's events in one statement with one parameter: the rows as a JSON array,
    unpacked by the database (``json_to_recordset``, ``json_each``). As an executemany with
    RETURNING, SQLAlchemy rendered a VALUES list of 7 parameters per row, each processed in
    Python, and psycopg parsed that long query anew every time (it caches only short ones)."""
    names = ", ".join((*_EVENT_COLUMNS, "payload"))
    if dialect == "postgresql":
        rows = (
            "SELECT r.retailer_id, r.cart_id, r.event_id, r.type, r.occurred_at, "
            "r.received_at, CAST(r.payload AS JSON) FROM json_to_recordset(CAST(:rows AS JSON)) "
            "AS r(retailer_id TEXT, cart_id TEXT, event_id TEXT, type TEXT, "
            "occurred_at TIMESTAMPTZ, received_at TIMESTAMPTZ, payload TEXT)"
        )
    else:  # SQLite; "WHERE true" tells its parser the ON CONFLICT is the upsert's
        picked = ", ".join(f"json_extract(value, '$.{c}')" for c in (*_EVENT_COLUMNS, "payload"))
        rows = f"SELECT {picked} FROM json_each(:rows) WHERE true"
    return text(
        f"INSERT INTO {EVENT.name} ({names}) {rows} "
        "ON CONFLICT (retailer_id, event_id) DO NOTHING RETURNING event_id"
    ).columns(event_id=String)


def _event_rows_json(conn: AsyncConnection, rows: list[dict[str, Any]]) -> str:
    """The rows as ``_insert_event_rows`` takes them: times as the dialect stores them (the
    column type's own bind processing: naive UTC text on SQLite, ISO with offset on
    PostgreSQL), the payload as its JSON text."""
    store_time = EVENT.c.occurred_at.type.bind_processor(conn.dialect)
    times: dict[Any, Any] = {}

    def stored(value: Any) -> Any:
        if value not in times:
            as_stored = store_time(value) if store_time else value
            times[value] = as_stored if isinstance(as_stored, str) else as_stored.isoformat()
        return times[value]

    return json.dumps(
        [
            {
                **row,
                "occurred_at": stored(row["occurred_at"]),
                "received_at": stored(row["received_at"]),
            }
            for row in rows
        ]
    )


@dataclass
class BatchOutcome:
    """What became of one event of ``record_simple_batch``."""

    outcome: str  # stored, duplicate, rejected
    reason: str | None = None
    # Why a rejected event was refused, for callers that answer it as the single route would:
    # ``event_id`` (the id was used for another cart) or ``not_owned`` (another browser's cart).
    refusal: str | None = None


NOT_OWNED_REASON = "the cart belongs to another browser"


@dataclass
class BatchRecorded:
    """``record_simple_batch``'s answer: each event's outcome (in body order), the carts whose
    row changed, and every cart the batch read or made, as it left them, by cart id."""

    outcomes: list[BatchOutcome]
    touched: list[CartRow]
    carts: dict[str, CartRow]


async def record_simple_batch(
    session: ModelSession,
    *,
    retailer: RetailerIdentity,
    events: Sequence[tuple[str, CartEventIn]],
    visitors: Sequence[str | None] | None = None,
    received_at: Sequence[datetime] | None = None,
) -> BatchRecorded:
    """``record_simple_event`` for many simple events at once, in set statements: one insert of
    every event (still the transaction's first statement), one read of their carts, one insert
    of the new carts as the batch leaves them, and one ``UPDATE`` per distinct set of changed
    columns of the others (executemany). Each cart's events apply in body order by the same
    rules, so the rows end as if each had been posted alone in that order.

    ``visitors``: per event, the browser (``visitor_hash``) whose cart it must be (the browser
    routes), else None. ``received_at``: per event, when it arrived (an event without
    ``occurred_at`` happened then); else now, for all."""
    conn = await session.connection()
    statements = _statements(conn)
    now = utcnow()
    arrived = list(received_at) if received_at is not None else [now] * len(events)
    visitor_of = list(visitors) if visitors is not None else [None] * len(events)
    at = [event.occurred_at or arrived[i] for i, (_, event) in enumerate(events)]
    rows = [
        {
            "retailer_id": retailer.id,
            "cart_id": cart_id,
            "event_id": event.event_id,
            "type": event.type,
            "occurred_at": at[i],
            "received_at": arrived[i],
            "payload": event.model_dump_json(exclude_none=True),
        }
        for i, (cart_id, event) in enumerate(events)
    ]
    inserted = set(
        (
            await conn.execute(
                _insert_event_rows(conn.dialect.name), {"rows": _event_rows_json(conn, rows)}
            )
        ).scalars()
    )
    outcomes: list[BatchOutcome | None] = [None] * len(events)
    new: list[int] = []  # positions of the events stored by this batch, in body order
    first_cart: dict[str, str] = {}
    for i, (cart_id, event) in enumerate(events):
        if event.event_id in inserted and event.event_id not in first_cart:
            first_cart[event.event_id] = cart_id
            new.append(i)
    is_new = set(new)  # membership per event: a list made the loops below quadratic
    seen_before = [e.event_id for _, e in events if e.event_id not in inserted]
    if seen_before:
        found = await conn.execute(
            select(EVENT.c.event_id, EVENT.c.cart_id).where(
                EVENT.c.retailer_id == retailer.id, EVENT.c.event_id.in_(set(seen_before))
            )
        )
        first_cart.update({row.event_id: row.cart_id for row in found})
    for i, (cart_id, event) in enumerate(events):
        if outcomes[i] is None and i not in is_new:
            same = first_cart.get(event.event_id) == cart_id
            outcomes[i] = (
                BatchOutcome("duplicate")
                if same
                else BatchOutcome(
                    "rejected",
                    f"event_id {event.event_id!r} was already used for another cart",
                    refusal="event_id",
                )
            )

    cart_ids = sorted({cart_id for cart_id, _ in events})
    carts = await _cart_rows(conn, retailer.id, cart_ids)
    # A cart first seen in this batch is built here and inserted once, as its events leave it:
    # no insert-then-read-then-update per new cart.
    created: dict[str, dict[str, Any]] = {}
    template: dict[str, Any] | None = None
    for i in new:
        cart_id = events[i][0]
        if cart_id not in carts:
            template = template or _new_cart_values(retailer.id, cart_id, events[i][1], now)
            carts[cart_id] = created[cart_id] = {
                **template,
                "id": None,
                "cart_id": cart_id,
                "last_activity_at": at[i],
            }

    refused: list[str] = []
    changed: dict[str, dict[str, Any]] = {}
    touchable: dict[str, dict[str, Any]] = {}
    for i, (cart_id, event) in enumerate(events):
        cart = carts.get(cart_id)  # None: an event id reused for a cart that does not exist
        if cart is None:
            continue
        visitor_hash = visitor_of[i]
        if visitor_hash is not None and cart["visitor_hash"] not in (None, visitor_hash):
            if i in is_new:
                refused.append(event.event_id)
            outcomes[i] = BatchOutcome("rejected", NOT_OWNED_REASON, refusal="not_owned")
            continue
        if i not in is_new:
            continue
        changes = changes_for(cart, event, at[i])
        if visitor_hash is not None and cart["visitor_hash"] is None:
            changes["visitor_hash"] = visitor_hash
        outcomes[i] = BatchOutcome("stored")
        if not changes:  # e.g. an older snapshot than the cart's: stored, but nothing to write
            continue
        cart.update(changes)
        changed.setdefault(cart_id, {}).update(changes)
        if becomes_touchable(cart, changes):
            touchable[cart_id] = cart
    if refused:  # stored by the first statement, but not this browser's to write
        await conn.execute(
            EVENT.delete().where(EVENT.c.retailer_id == retailer.id, EVENT.c.event_id.in_(refused))
        )
    if created:
        assert template is not None
        inserted_columns = [
            c for c, v in template.items() if v is not None or c in CHANGEABLE_COLUMNS
        ]
        # Then their keys in a read of two columns: an executemany with RETURNING is built as
        # one long VALUES list in Python (most of a new cart's CPU on PostgreSQL), without it
        # the driver's own executemany sends the rows.
        await conn.execute(
            statements.insert_new_carts,
            [{c: cart[c] for c in inserted_columns} for cart in created.values()],
        )
        made = await conn.execute(statements.select_ids, {"r": retailer.id, "c": list(created)})
        for pk, cart_id in made:
            created[cart_id]["id"] = pk
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for cart_id, changes in changed.items():
        if cart_id in created:
            continue
        columns = tuple(sorted(changes))
        by_columns[columns].append(
            {"cart_pk": carts[cart_id]["id"], **{f"new_{c}": changes[c] for c in columns}}
        )
    for columns, params in by_columns.items():
        await conn.execute(_update_of(columns), params)
    if touchable:
        await decide_groups(session, retailer, list(touchable.values()))
    rows_by_id = {cart_id: CartRow.of(cart) for cart_id, cart in carts.items()}
    return BatchRecorded(
        outcomes=[o or BatchOutcome("rejected", "not recorded") for o in outcomes],
        touched=[rows_by_id[c] for c in cart_ids if c in changed],
        carts=rows_by_id,
    )


async def _cart_rows(
    conn: AsyncConnection, retailer_id: str, cart_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(_statements(conn).select_carts, {"r": retailer_id, "c": cart_ids})
    carts = (dict(zip(READ_COLUMNS, row, strict=True)) for row in rows)
    return {cart["cart_id"]: cart for cart in carts}
