"""The set statements (``fast_events.record_batch``) leave the same carts, customers and consent
history as the ORM path (``events.store_event``) for the same events, one at a time or all at
once; on SQLite and PostgreSQL."""

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from winback.carts.events import CartEventIn, store_event
from winback.carts.fast_events import commit_with_retries, record_batch
from winback.carts.holdout import holdout_bucket, shopper_key
from winback.carts.models import Cart
from winback.customers.consent_models import ConsentChange
from winback.customers.identity import normalize_national_phone
from winback.customers.models import Customer
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.retailers.lookups import RetailerRef
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases
SALT = "a-fixed-salt"
SHOPPER = {"email": "cy@example.com"}
NOW = utcnow().replace(microsecond=0)


def ev(n: int, type: str = "item_added", minutes: int = 0, **fields: Any) -> CartEventIn:
    if type in ("item_added", "item_removed") and "items" not in fields:
        fields["items"] = [{"sku": f"S{n}", "name": "Shoe", "price": 10.0 + n, "quantity": 1}]
    at = NOW - timedelta(minutes=60 - minutes)
    return CartEventIn.model_validate(
        {"event_id": f"e{n}", "type": type, "occurred_at": at, **fields}
    )


# (cart, event): shoppers met by email, then by phone, then by the retailer's id; consent given,
# repeated and withdrawn; an older snapshot; a nudge trigger; a resend; an anonymous cart.
EVENTS: list[tuple[str, CartEventIn]] = [
    ("c1", ev(1, customer={"email": "ana@example.com"}, consent={"email": True})),
    ("c1", ev(2, minutes=5, page="/checkout")),
    ("c2", ev(3, minutes=6, customer={"email": "ANA@example.com", "phone": "612 345 678"})),
    (
        "c3",
        ev(
            4,
            minutes=7,
            customer={"phone": "+34612345678", "name": "Ana"},
            consent={"sms": True, "email": True},
        ),
    ),
    (
        "c4",
        ev(
            5,
            minutes=8,
            customer={"id": "crm-9", "email": "bo@example.com"},
            consent={"email": False},
        ),
    ),
    ("c5", ev(6, minutes=9, customer={"id": "crm-9", "locale": "es"}, consent={"email": True})),
    ("c1", ev(7, minutes=1, items=[{"sku": "OLD", "name": "Old", "price": 1.0}])),  # older
    ("c6", ev(8, "idle", minutes=10)),  # anonymous, nudged
    ("c6", ev(9, "activity", minutes=11, page="/p")),
    (
        "c4",
        ev(
            5,
            minutes=8,
            customer={"id": "crm-9", "email": "bo@example.com"},
            consent={"email": False},
        ),
    ),  # a resend
    ("c7", ev(10, minutes=12, consent={"voice": True})),  # consent, no contact
    ("c3", ev(11, "item_removed", minutes=13, items=[])),
    # The retailer's id wins over the email, which then names two customers: the older wins.
    ("c8", ev(12, minutes=14, customer={"id": "crm-9", "email": "ana@example.com"})),
    ("c9", ev(13, minutes=15, customer={"email": "ana@example.com", "timezone": "UTC"})),
]


async def make_retailer(sessions: SessionFactory) -> RetailerRef:
    retailer_id = f"same_{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        session.add(
            Retailer(
                id=retailer_id, name="Same", country="ES", webhook_secret="s", holdout_salt=SALT
            )
        )
        await session.commit()
    return RetailerRef(id=retailer_id, name="Same", country="ES")


async def state(sessions: SessionFactory, retailer: RetailerRef) -> dict[str, Any]:
    """What the rows say, with customers named by their first email or phone (ids differ)."""
    async with sessions() as session:
        customers = (
            await session.exec(
                select(Customer)
                .where(Customer.retailer_id == retailer.id)
                .order_by(col(Customer.id))
            )
        ).all()
        carts = (
            await session.exec(
                select(Cart).where(Cart.retailer_id == retailer.id).order_by(col(Cart.cart_id))
            )
        ).all()
        consents = (
            await session.exec(
                select(ConsentChange)
                .where(ConsentChange.retailer_id == retailer.id)
                .order_by(col(ConsentChange.id))
            )
        ).all()
    name = {c.id: c.email or c.phone or f"customer#{n}" for n, c in enumerate(customers)}
    for cart in carts:  # the bucket follows the shopper it was decided for
        if cart.holdout_bucket is not None:
            who = shopper_key(cart.customer_id, cart.visitor_hash, cart.cart_id)
            assert cart.holdout_bucket == holdout_bucket(SALT, retailer.id, who), cart.cart_id
    return {
        "customers": [
            (
                c.external_id,
                c.email,
                c.phone,
                c.name,
                c.locale,
                c.timezone,
                c.consent_email,
                c.consent_sms,
                c.consent_voice,
            )
            for c in customers
        ],
        "carts": [
            (
                c.cart_id,
                name.get(c.customer_id) if c.customer_id else None,
                c.items,
                c.value,
                c.snapshot_at,
                c.last_activity_at,
                c.last_page,
                c.add_remove_count,
                c.nudge_reason,
                c.status,
                c.holdout_bucket is not None,
                c.holdout_group,
            )
            for c in carts
        ],
        "consents": [(name[c.customer_id], c.channel, c.granted, c.source) for c in consents],
    }


async def test_the_batch_path_leaves_what_the_orm_path_leaves(sessions: SessionFactory) -> None:
    orm, one_by_one, all_at_once = [await make_retailer(sessions) for _ in range(3)]
    async with sessions() as session:
        for cart_id, event in EVENTS:
            await store_event(
                session, retailer=orm, cart_id=cart_id, event=event.model_copy(deep=True)
            )
    for retailer, batches in ((one_by_one, [[e] for e in EVENTS]), (all_at_once, [EVENTS])):
        for batch in batches:
            events = [(c, e.model_copy(deep=True)) for c, e in batch]
            for _, event in events:
                normalize_national_phone(event.customer, retailer.country)
            async with sessions() as session:
                await commit_with_retries(
                    session,
                    lambda s=session, r=retailer, b=events: record_batch(s, retailer=r, events=b),
                )

    expected = await state(sessions, orm)
    assert len(expected["customers"]) == 3  # Ana (by email, then phone), Bo (by id), consent-only
    assert await state(sessions, one_by_one) == expected
    assert await state(sessions, all_at_once) == expected


async def test_times_are_stored_in_the_form_the_orm_stores_them(sessions: SessionFactory) -> None:
    """On SQLite a time is text, compared and sorted as text: a batch-stored time with a "T"
    sorted apart from the ORM's "YYYY-MM-DD HH:MM:SS" (the latest event, the sweep's grace)."""
    orm, batch = [await make_retailer(sessions) for _ in range(2)]
    async with sessions() as session:
        await store_event(session, retailer=orm, cart_id="c1", event=ev(1, customer=SHOPPER))
        await commit_with_retries(
            session,
            lambda: record_batch(session, retailer=batch, events=[("c1", ev(1, customer=SHOPPER))]),
        )
        conn = await session.connection()

        async def raw(query: str, retailer: RetailerRef) -> list[Any]:
            rows = await conn.execute(text(query), {"r": retailer.id})
            return [shape(value) for row in rows for value in row]

        for query in (
            "SELECT occurred_at, received_at FROM cartevent WHERE retailer_id = :r",
            "SELECT snapshot_at, last_activity_at, created_at FROM cart WHERE retailer_id = :r",
        ):
            assert await raw(query, batch) == await raw(query, orm), query


def shape(value: Any) -> Any:
    """A stored time's form: its text with the digits blanked (SQLite), else its type."""
    return re.sub(r"\d", "0", value) if isinstance(value, str) else type(value)
