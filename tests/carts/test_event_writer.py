"""Group commit (``winback.carts.event_writer``): events that arrive together are stored in one
transaction, and each request still gets its own answer, only after that commit; on SQLite and
PostgreSQL."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import Stack
from tests.support.helpers import items
from winback.carts.event_writer import EventWriter, WrittenEvent
from winback.carts.events import CartEventIn, EventIdConflict
from winback.carts.fast_events import NotOwned
from winback.carts.models import Cart, CartEvent
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.retailers.lookups import RetailerRef
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases


def edit(event_id: str, *prices: float, minutes_ago: float = 0, **fields: Any) -> CartEventIn:
    return CartEventIn.model_validate(
        {
            "event_id": event_id,
            "type": "item_added",
            "items": items(*prices),
            "occurred_at": utcnow() - timedelta(minutes=minutes_ago),
            **fields,
        }
    )


async def a_retailer(sessions: SessionFactory) -> RetailerRef:
    retailer_id = f"writer_{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        session.add(Retailer(id=retailer_id, name="Writer", country="ES", webhook_secret="s"))
        await session.commit()
    return RetailerRef(id=retailer_id, name="Writer", country="ES")


def counting_commits(sessions: SessionFactory) -> list[int]:
    """A list that grows by one at every commit on the factory's engine."""
    commits: list[int] = []
    bind = sessions.kw["bind"]
    sa_event.listen(bind.sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


async def test_events_that_arrive_together_share_a_commit_and_each_gets_its_answer(
    sessions: SessionFactory,
) -> None:
    retailer = await a_retailer(sessions)
    writer = EventWriter(sessions)
    commits = counting_commits(sessions)
    # Ten carts, four edits each, sent at once and out of time order: each cart must end with
    # its newest snapshot (the one a minute old), whatever order they were written in.
    sent = [
        (f"c{cart}", edit(f"e{cart}-{n}", float(n + 1), minutes_ago=(4 - n) if n != 2 else 9))
        for cart in range(10)
        for n in range(4)
    ]
    answers = await asyncio.gather(*(writer.record(retailer, c, e) for c, e in sent))

    assert all(isinstance(a, WrittenEvent) and not a.duplicate for a in answers)
    assert len(commits) == 1  # forty requests, one transaction
    async with sessions() as session:
        carts = (await session.exec(select(Cart).where(Cart.retailer_id == retailer.id))).all()
        stored = await session.exec(
            select(func.count()).select_from(CartEvent).where(CartEvent.retailer_id == retailer.id)
        )
        assert stored.one() == 40
    assert sorted(c.cart_id for c in carts) == [f"c{n}" for n in range(10)]
    assert {c.value for c in carts} == {4.0}  # the newest of each cart's four
    assert {a.cart.cart_id: a.cart.id for a in answers} == {c.cart_id: c.id for c in carts}


async def test_a_resend_a_reused_id_and_another_browsers_cart_are_answered_one_by_one(
    sessions: SessionFactory,
) -> None:
    retailer = await a_retailer(sessions)
    writer = EventWriter(sessions)
    await writer.record(retailer, "mine", edit("first", 10.0), visitor_hash="browser-a")

    resend, reused, foreign, fine = await asyncio.gather(
        writer.record(retailer, "mine", edit("first", 10.0), visitor_hash="browser-a"),
        writer.record(retailer, "other", edit("first", 20.0)),
        writer.record(retailer, "mine", edit("theirs", 30.0), visitor_hash="browser-b"),
        writer.record(retailer, "mine", edit("second", 40.0), visitor_hash="browser-a"),
        return_exceptions=True,
    )

    assert isinstance(resend, WrittenEvent) and resend.duplicate
    assert isinstance(reused, EventIdConflict)
    assert isinstance(foreign, NotOwned)
    assert isinstance(fine, WrittenEvent) and not fine.duplicate
    async with sessions() as session:
        ids = await session.exec(
            select(CartEvent.event_id).where(CartEvent.retailer_id == retailer.id)
        )
        assert sorted(ids.all()) == ["first", "second"]  # nothing of the refused ones
        cart = (await session.exec(select(Cart).where(Cart.cart_id == "mine"))).one()
        assert (cart.value, cart.visitor_hash) == (40.0, "browser-a")


async def test_an_event_that_cannot_be_stored_fails_alone(sessions: SessionFactory) -> None:
    """A transaction that fails as a whole is written again one event at a time, so the events
    that can be stored are, and only the bad one's request gets the error."""
    retailer = await a_retailer(sessions)
    ghost = RetailerRef(id="no_such_retailer", name="Ghost", country="ES")  # breaks a foreign key
    writer = EventWriter(sessions)

    good, bad, also_good = await asyncio.gather(
        writer.record(retailer, "c1", edit("g1", 10.0)),
        writer.record(ghost, "c1", edit("b1", 10.0)),
        writer.record(retailer, "c2", edit("g2", 10.0)),
        return_exceptions=True,
    )

    assert isinstance(good, WrittenEvent) and isinstance(also_good, WrittenEvent)
    assert isinstance(bad, Exception) and not isinstance(bad, WrittenEvent)
    async with sessions() as session:
        ids = await session.exec(select(CartEvent.event_id).order_by(CartEvent.event_id))
        assert ids.all() == ["g1", "g2"]


async def test_the_route_answers_each_of_many_concurrent_requests_after_the_commit(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    payloads = [
        {"event_id": f"e{n}", "type": "item_added", "items": items(float(n)), "page": f"/p/{n}"}
        for n in range(30)
    ]
    answers = await asyncio.gather(
        *(retailer.post(f"/v1/carts/c{n % 3}/events", p) for n, p in enumerate(payloads))
    )

    assert [a.status_code for a in answers] == [202] * 30, [a.text for a in answers]
    assert {a.json()["workflow_actions"] == [] for a in answers} == {True}
    async with stack.sessions() as session:
        stored = await session.exec(
            select(func.count()).select_from(CartEvent).where(CartEvent.retailer_id == retailer.id)
        )
        assert stored.one() == 30
