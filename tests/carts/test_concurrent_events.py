"""Events for one cart at the same moment: never a 5xx, every new event stored, a resend a
duplicate; on SQLite and PostgreSQL."""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.models import CartEvent

pytestmark = pytest.mark.both_databases


def body(event_id: str, type: str = "item_added") -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": type,
        "items": items(25.0),
        "customer": SHOPPER,
        "consent": ALL_CONSENT,
    }


async def post(
    retailer: RetailerClient, cart_id: str, payload: dict[str, object]
) -> httpx.Response:
    return await retailer.post(f"/v1/carts/{cart_id}/events", payload)


async def stored_events(stack: Stack, retailer_id: str) -> int:
    async with stack.sessions() as session:
        query = (
            select(func.count()).select_from(CartEvent).where(CartEvent.retailer_id == retailer_id)
        )
        return int((await session.exec(query)).one())


async def test_the_same_event_twice_at_once_is_stored_once_and_answered_as_a_duplicate(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    for pair in range(10):
        cart_id, event_id = f"same-{pair}", uuid.uuid4().hex
        answers = await asyncio.gather(
            post(retailer, cart_id, body(event_id)), post(retailer, cart_id, body(event_id))
        )
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    assert await stored_events(stack, retailer.id) == 10


async def test_two_different_first_events_for_one_cart_are_both_stored(stack: Stack) -> None:
    retailer = await stack.retailer()
    for pair in range(20):
        cart_id = f"first-{pair}"
        answers = await asyncio.gather(
            post(retailer, cart_id, body(uuid.uuid4().hex)),
            post(retailer, cart_id, body(uuid.uuid4().hex, "activity")),
        )
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        assert [a.json()["duplicate"] for a in answers] == [False, False]
    assert await stored_events(stack, retailer.id) == 40
