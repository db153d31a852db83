"""End to end on the Temporal dev server, in real time, through the API: what a newcomer does."""

import asyncio
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items

pytestmark = pytest.mark.e2e


async def _until(
    retailer: RetailerClient, count: int, deadline: float = 60
) -> list[dict[str, Any]]:
    """The outbox once it holds ``count`` messages (polled, with a deadline)."""
    async with asyncio.timeout(deadline):
        while len(sent := await retailer.outbox()) < count:
            await asyncio.sleep(0.2)
    return sent


async def test_walkthrough_nudge_email_sms_then_order(dev_stack: Stack) -> None:
    retailer = await dev_stack.retailer()
    await retailer.set_cadence(
        cadence(
            {"channel": "onsite"},
            {"channel": "email", "delay": "1s"},
            {"channel": "sms", "delay": "2s"},
            {"channel": "email", "delay": "1h", "template": "cart_last_chance"},
            abandon_after="10s",
        )
    )
    await retailer.event(
        "c1", "item_added", items=items(59.0, 25.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c1", "exit_intent")
    [nudge] = await _until(retailer, 1)
    assert nudge["channel"] == "onsite"
    pending = (await retailer.get("/v1/carts/c1/nudges")).json()
    assert [n["offer"] for n in pending] == ["chat,callback"]

    sent = await _until(retailer, 3)
    assert [m["channel"] for m in sent] == ["onsite", "email", "sms"]
    cart = (await retailer.get("/v1/carts/c1")).json()
    assert cart["workflow"]["stage"] == "contacting"
    assert cart["workflow"]["next_channel"] == "email"

    await retailer.event("c1", "order_placed", order={"order_id": "o-9", "value": 84.0})
    result = await retailer.result("c1")

    assert result.stage == "recovered"
    cart = (await retailer.get("/v1/carts/c1")).json()
    assert (cart["status"], cart["recovered_channel"], cart["recovered_step"]) == (
        "ordered",
        "sms",
        2,
    )
    report = (await retailer.get("/v1/reports/cart-recovery")).json()
    assert report["carts_recovered"] == 1 and report["revenue_recovered"] == 84.0
    assert report["study_test"] == {
        "abandoned_with_contact": 1,
        "nudged_on_site": 1.0,
        "emailed_within_24h": 1.0,
        "sms_or_call_within_7d": 1.0,
    }
