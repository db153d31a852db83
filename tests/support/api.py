"""Helpers for the API tests: waiting on a condition with a deadline, and reading what the
storefront and the workflow see."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.conftest import RetailerClient

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], *, what: str, within: float = 15.0) -> T:
    """Calls ``probe`` until it returns something truthy; fails after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not (result := await probe()):
                await asyncio.sleep(0.05)
            return result
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


async def cart(retailer: RetailerClient, cart_id: str) -> dict[str, Any]:
    response = await retailer.get(f"/v1/carts/{cart_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pending_nudges(retailer: RetailerClient, cart_id: str) -> list[dict[str, Any]]:
    response = await retailer.get(f"/v1/carts/{cart_id}/nudges")
    assert response.status_code == 200, response.text
    return list(response.json())


async def wait_for_nudge(retailer: RetailerClient, cart_id: str) -> dict[str, Any]:
    """The on-site nudge the worker writes for the storefront to poll."""
    nudges = await eventually(
        lambda: pending_nudges(retailer, cart_id), what=f"a nudge on cart {cart_id}"
    )
    assert len(nudges) == 1, nudges
    return nudges[0]


async def signals(retailer: RetailerClient, cart_id: str) -> list[str]:
    """The signals the cart's workflow has received, from its history."""
    history = await retailer.workflow(cart_id).fetch_history()
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]


async def report(retailer: RetailerClient, **params: Any) -> dict[str, Any]:
    response = await retailer.get("/v1/reports/cart-recovery", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())
