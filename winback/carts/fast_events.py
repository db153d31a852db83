"""The ingestion path in set statements: many storefront events, of many carts, at once.

Every storefront event except an order, an opt-out and a nudge reply (``can_batch``) is stored
here, in batches: those of a beacon (``POST /v1/client/events:batch``), and the single events
that one API process receives at the same moment (``event_writer``'s group commit). Per batch of
one retailer's events, in one transaction:

1. one ``INSERT`` of every event, ``ON CONFLICT DO NOTHING`` on the unique (retailer, event id),
   its rows as one JSON parameter the database unpacks: a resend inserts nothing and is answered
   as a duplicate. It is the transaction's first statement, so on SQLite the write lock is taken
   before anything is read (no snapshot older than the lock);
2. one ``SELECT`` of their carts (``FOR UPDATE`` on PostgreSQL);
3. for the events with a contact or consent (a cart's first event, usually): one read of the
   customers they could match, changed in memory by ``upsert_customer``'s rules, then written at
   once (``customers.bulk_identity``);
4. the holdout group of every cart that could now be touched, decided in memory;
5. one ``INSERT`` of the new carts, as the batch leaves them, and one ``UPDATE`` per distinct set
   of changed columns of the others.

Each cart's events apply in order by ``record_event``'s rules: an older event never overwrites a
newer snapshot, activity only moves forward, the nudge reason is set once. Orders, opt-outs and
nudge replies take ``record_event`` (the ORM): they are rare and do more. The tests of the event
routes hold for both.
"""

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel.ext.asyncio.session import AsyncSession as ModelSession

from winback.carts.cadence_store import current_cadence_cached
from winback.carts.events import (
    ACTIVITY_EVENTS,
    CONFUSION_ADD_REMOVE,
    NUDGE_EVENTS,
    STORE_ATTEMPTS,
    CartEventIn,
    pending_changes,
)
from winback.carts.holdout import group_for, holdout_bucket, holdout_salt, is_touchable, shopper_key
from winback.carts.models import Cart, CartEvent
from winback.customers.bulk_identity import CustomerBatch, CustomerState
from winback.platform.clock import utcnow
from winback.platform.db import UTCDateTime, is_write_conflict, sqlite_writer
from winback.retailers.lookups import RetailerIdentity
from workflows.vocabulary import CartStatus

CART: Table = Cart.__table__  # type: ignore[attr-defined]
EVENT: Table = CartEvent.__table__  # type: ignore[attr-defined]
SLOW_TYPES = {"order_placed", "opt_out", "nudge_reply"}


def can_batch(event: CartEventIn) -> bool:
    """Not an order, an opt-out or a nudge reply: the event is stored here."""
    return event.type not in SLOW_TYPES


class NotOwned(Exception):
    """The cart belongs to another browser (``visitor_hash``)."""


# The columns of a cart that decide what its workflow must hear (``CartRow``).
CART_ROW_COLUMNS = (
    "id",
    "cart_id",
    "customer_id",
    "status",
    "nudge_reason",
    "workflow_id",
    "workflow_started",
    "contact_signalled",
    "nudge_signalled",
    "order_signalled",
    "opt_out_signalled",
    "callback_requested",
    "callback_signalled",
    "visitor_hash",
)


@dataclass
class CartRow:
    """The cart as a batch left it: what ``pending_changes`` and the answer need, and whether
    its customer has an email or a phone (None: the batch did not read the customer)."""

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
    has_contact: bool | None = None

    @classmethod
    def of(cls, row: dict[str, Any], has_contact: bool | None = None) -> "CartRow":
        return cls(**{name: row[name] for name in CART_ROW_COLUMNS}, has_contact=has_contact)

    @property
    def starts_workflow(self) -> bool | None:
        """Whether the cart now has what starts its workflow, and no workflow yet (None when
        that needs its customer, which the batch did not read)."""
        if self.workflow_started:
            return False
        if self.customer_id is not None and self.has_contact is None:
            return None
        return pending_changes(self, contact=bool(self.has_contact)).start


# What a batch reads of a cart: the columns ``changes_for``, the holdout and ``CartRow`` use
# (reading all 35 cost their result processing, JSON and datetimes, per cart).
READ_COLUMNS = (
    *CART_ROW_COLUMNS,
    "items",
    "snapshot_at",
    "last_activity_at",
    "last_page",
    "add_remove_count",
    "holdout_bucket",
)
# What a brand-new cart row is inserted with: the columns ``changes_for``, the claim, the contact
# or the holdout may set, plus those whose default is not NULL. Every row of one executemany
# needs the same columns.
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
    "customer_id",
    "holdout_bucket",
    "holdout_group",
)


# A batch's carts, read once (built once: building a statement and its cache key per batch was a
# visible part of its CPU).
SELECT_CARTS = (
    select(*(CART.c[name] for name in READ_COLUMNS))
    .where(
        CART.c.retailer_id == bindparam("r"),
        CART.c.cart_id.in_(bindparam("c", expanding=True)),
    )
    .with_for_update()
)


@cache
def _update_of(columns: tuple[str, ...]) -> Any:
    """``UPDATE cart SET <columns> WHERE id = :cart_pk``, one per set of changed columns."""
    return (
        update(CART)
        .where(CART.c.id == bindparam("cart_pk"))
        .values({c: bindparam(f"new_{c}") for c in columns})
    )


def _new_cart_values(retailer_id: str, cart_id: str, at: Any) -> dict[str, Any]:
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


def needs_workflow(cart: CartRow) -> bool:
    """Whether the cart's workflow may have something to hear (then ``tell_workflow`` decides
    on the ORM row): a known customer it was not told about, or a pending course change."""
    if cart.customer_id is not None and not (cart.workflow_started and cart.contact_signalled):
        return True
    return pending_changes(cart, contact=False).any


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


_EVENT_COLUMNS = (
    "retailer_id",
    "cart_id",
    "event_id",
    "type",
    "occurred_at",
    "received_at",
    "payload",
)


@cache
def _insert_json_rows(
    dialect: str, table_name: str, columns: tuple[str, ...], tail: str, returning: tuple[str, ...]
) -> Any:
    """``INSERT INTO table (columns) <rows> <tail> RETURNING <returning>``, the rows all in one
    parameter: a JSON array the database unpacks (``json_to_recordset``, ``json_each``). As an
    executemany, SQLAlchemy processed every value of every row in Python (and with RETURNING
    rendered one long ``VALUES`` list, which psycopg parsed anew each time: it caches only short
    queries); this is one statement with one parameter, whatever the number of rows."""
    table = CART if table_name == CART.name else EVENT
    names = ", ".join(columns)
    if dialect == "postgresql":
        pg = postgresql.dialect()
        # JSON values arrive as JSON text (a payload) or as JSON (the cart's items): as TEXT,
        # then cast, either way.
        declared = ", ".join(
            f"{c} {'TEXT' if _is_json(table, c) else table.c[c].type.compile(dialect=pg)}"
            for c in columns
        )
        picked = ", ".join(
            f"CAST(r.{c} AS JSON)" if _is_json(table, c) else f"r.{c}" for c in columns
        )
        rows = f"SELECT {picked} FROM json_to_recordset(CAST(:rows AS JSON)) AS r({declared})"
    else:  # SQLite; "WHERE true" tells its parser that an ON CONFLICT is the upsert's
        picked = ", ".join(f"json_extract(value, '$.{c}')" for c in columns)
        rows = f"SELECT {picked} FROM json_each(:rows) WHERE true"
    returned = ", ".join(returning)
    return text(f"INSERT INTO {table.name} ({names}) {rows} {tail} RETURNING {returned}").columns(
        *(table.c[c] for c in returning)
    )


def _is_json(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, JSON)


def _json_rows(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> str:
    """The rows as ``_insert_json_rows`` takes them: times as the dialect stores them (the
    column type's own bind processing: naive UTC text on SQLite, ISO with offset on
    PostgreSQL), JSON values as their JSON text (a payload already is), the rest as they are."""
    if not rows:
        return "[]"
    columns = rows[0].keys()
    timed = [c for c in columns if isinstance(table.c[c].type, UTCDateTime)]
    as_text = [c for c in columns if _is_json(table, c) and c != "payload"]
    # The dialect's own processing (``dialect_impl``): the generic type's would leave SQLite an
    # ISO text with a "T", which sorts apart from the stored "YYYY-MM-DD HH:MM:SS" in SQL.
    store_time = UTCDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    times: dict[Any, Any] = {None: None}

    def stored(value: Any) -> Any:
        if value not in times:
            as_stored = store_time(value) if store_time else value
            times[value] = as_stored if isinstance(as_stored, str) else as_stored.isoformat()
        return times[value]

    def encoded(row: dict[str, Any]) -> dict[str, Any]:
        for c in timed:
            row[c] = stored(row[c])
        for c in as_text:
            row[c] = json.dumps(row[c])
        return row

    return json.dumps([encoded(dict(row)) for row in rows])


@dataclass
class BatchOutcome:
    """What became of one event of ``record_batch``."""

    outcome: str  # stored, duplicate, rejected
    reason: str | None = None
    # Why a rejected event was refused, for callers that answer it as the single route would:
    # ``event_id`` (the id was used for another cart) or ``not_owned`` (another browser's cart).
    refusal: str | None = None


NOT_OWNED_REASON = "the cart belongs to another browser"


@dataclass
class BatchRecorded:
    """``record_batch``'s answer: each event's outcome (in body order), the carts whose row
    changed, and every cart the batch read or made, as it left them, by cart id."""

    outcomes: list[BatchOutcome]
    touched: list[CartRow]
    carts: dict[str, CartRow]


async def record_batch(
    session: ModelSession,
    *,
    retailer: RetailerIdentity,
    events: Sequence[tuple[str, CartEventIn]],
    visitors: Sequence[str | None] | None = None,
    received_at: Sequence[datetime] | None = None,
) -> BatchRecorded:
    """Stores ``events`` (each ``can_batch``) of one retailer and updates their carts and
    customers in the caller's transaction, in set statements (see the module docstring). Each
    cart's events apply in body order by the same rules, so the rows end as if each had been
    posted alone in that order.

    ``visitors``: per event, the browser (``visitor_hash``) whose cart it must be (the browser
    routes), else None. ``received_at``: per event, when it arrived (an event without
    ``occurred_at`` happened then); else now, for all."""
    conn = await session.connection()
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
    insert_events = _insert_json_rows(
        conn.dialect.name,
        EVENT.name,
        _EVENT_COLUMNS,
        "ON CONFLICT (retailer_id, event_id) DO NOTHING",
        ("event_id",),
    )
    inserted = set(
        (await conn.execute(insert_events, {"rows": _json_rows(conn, EVENT, rows)})).scalars()
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
            template = template or _new_cart_values(retailer.id, cart_id, now)
            carts[cart_id] = created[cart_id] = {
                **template,
                "id": None,
                "cart_id": cart_id,
                "last_activity_at": at[i],
            }
    customers = await _customers_of(conn, retailer, events, is_new, carts)

    refused: list[str] = []
    changed: dict[str, dict[str, Any]] = {}
    stored_for: set[str] = set()  # carts with an event stored by this batch
    customer_of: dict[str, CustomerState] = {}  # carts whose customer an event set or changed
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
        outcomes[i] = BatchOutcome("stored")
        stored_for.add(cart_id)
        changes = changes_for(cart, event, at[i])
        if visitor_hash is not None and cart["visitor_hash"] is None:
            changes["visitor_hash"] = visitor_hash
        if customers is not None and (event.customer is not None or event.consent is not None):
            customer_of[cart_id] = customers.upsert(
                cart["customer_id"], event.customer, event.consent, now
            )
        if changes:
            cart.update(changes)
            changed.setdefault(cart_id, {}).update(changes)
    if refused:  # stored by the first statement, but not this browser's to write
        await conn.execute(
            EVENT.delete().where(EVENT.c.retailer_id == retailer.id, EVENT.c.event_id.in_(refused))
        )
    if customers is not None:
        await customers.write(conn)  # new customers get their ids, for the carts below
        for cart_id, customer in customer_of.items():
            if carts[cart_id]["customer_id"] != customer.id:
                carts[cart_id]["customer_id"] = customer.id
                changed.setdefault(cart_id, {})["customer_id"] = customer.id
    contact = {cart_id: _has_contact(cart, customers) for cart_id, cart in carts.items()}
    await _decide_groups(
        session, retailer, [carts[c] for c in sorted(stored_for)], contact, changed
    )
    if created:
        assert template is not None
        inserted_columns = tuple(
            c for c, v in template.items() if v is not None or c in CHANGEABLE_COLUMNS
        )
        # No ON CONFLICT: a concurrent first event of the same cart makes this fail with a
        # unique violation, and ``commit_with_retries`` does the whole batch again (then the
        # cart is found and updated like any other).
        insert_carts = _insert_json_rows(
            conn.dialect.name, CART.name, inserted_columns, "", ("id", "cart_id")
        )
        made = await conn.execute(
            insert_carts,
            {
                "rows": _json_rows(
                    conn,
                    CART,
                    [{c: cart[c] for c in inserted_columns} for cart in created.values()],
                )
            },
        )
        for pk, cart_id in made:
            created[cart_id]["id"] = pk
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for cart_id, changes in changed.items():
        if cart_id in created or not changes:
            continue
        columns = tuple(sorted(changes))
        by_columns[columns].append(
            {"cart_pk": carts[cart_id]["id"], **{f"new_{c}": changes[c] for c in columns}}
        )
    for columns, params in by_columns.items():
        await conn.execute(_update_of(columns), params)
    rows_by_id = {
        cart_id: CartRow.of(cart, contact.get(cart_id)) for cart_id, cart in carts.items()
    }
    return BatchRecorded(
        outcomes=[o or BatchOutcome("rejected", "not recorded") for o in outcomes],
        touched=[rows_by_id[c] for c in cart_ids if c in changed],
        carts=rows_by_id,
    )


async def _customers_of(
    conn: AsyncConnection,
    retailer: RetailerIdentity,
    events: Sequence[tuple[str, CartEventIn]],
    is_new: set[int],
    carts: dict[str, dict[str, Any]],
) -> CustomerBatch | None:
    """The customers this batch needs: those its contact events could match, and those of its
    carts whose holdout group may be decided now (the group follows the shopper). None when no
    event has a contact and no such cart has a customer."""
    given = [
        event.customer
        for i, (_, event) in enumerate(events)
        if i in is_new and event.customer is not None
    ]
    with_contact = any(
        i in is_new and (event.customer is not None or event.consent is not None)
        for i, (_, event) in enumerate(events)
    )
    ids = {
        cart["customer_id"]
        for cart in carts.values()
        if cart["customer_id"] is not None
        and (with_contact or (cart["holdout_bucket"] is None and not cart["workflow_started"]))
    }
    if not (with_contact or ids):
        return None
    return await CustomerBatch.load(conn, retailer.id, ids=ids, given=given)


def _has_contact(cart: dict[str, Any], customers: CustomerBatch | None) -> bool | None:
    """Whether the cart's customer has an email or a phone; None if the batch did not read
    it."""
    if cart["customer_id"] is None:
        return False
    known = customers.known(cart["customer_id"]) if customers is not None else None
    return None if known is None else known.has_contact


async def _decide_groups(
    session: ModelSession,
    retailer: RetailerIdentity,
    carts: list[dict[str, Any]],
    contact: dict[str, bool | None],
    changed: dict[str, dict[str, Any]],
) -> None:
    """The holdout group of each cart that could now be touched and has none yet, decided by
    ``holdout.decide_group``'s rule, from the shopper it now belongs to (once per cart)."""
    due = [
        cart
        for cart in carts
        if cart["holdout_bucket"] is None
        and not cart["workflow_started"]
        and is_touchable(cart["status"], bool(contact.get(cart["cart_id"])), cart["nudge_reason"])
    ]
    if not due:
        return
    # The cadence the cart's workflow will start with (the same per-process cache).
    cadence = await current_cadence_cached(session, retailer_id=retailer.id)
    salt = await holdout_salt(session, retailer)
    for cart in due:
        identity = shopper_key(cart["customer_id"], cart["visitor_hash"], cart["cart_id"])
        bucket = holdout_bucket(salt, retailer.id, identity)
        decided = {
            "holdout_bucket": bucket,
            "holdout_group": group_for(bucket, cadence.holdout_percent),
        }
        cart.update(decided)
        changed.setdefault(cart["cart_id"], {}).update(decided)


async def _cart_rows(
    conn: AsyncConnection, retailer_id: str, cart_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(SELECT_CARTS, {"r": retailer_id, "c": cart_ids})
    carts = (dict(zip(READ_COLUMNS, row, strict=True)) for row in rows)
    return {cart["cart_id"]: cart for cart in carts}
