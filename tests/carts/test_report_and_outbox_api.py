"""Reports and the outbox after carts run their cadence on the time-skipping server.

Workflow time is the test server's clock and the API's is the wall clock; they start together
(a fresh server per test) but the server runs ahead once time is skipped. So an order is
credited to a follow-up only with an explicit ``occurred_at`` after it, and an order without
one is credited to the on-site nudge, which goes out in real time before abandonment.
"""

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart, eventually, report, wait_for_nudge
from tests.support.helpers import ALL_CONSENT, cadence, items
from winback.platform.clock import utcnow

pytestmark = pytest.mark.both_databases

ANA = {"email": "ana@example.com", "phone": "+1 415 555 2671", "name": "Ana", "timezone": "UTC"}
BOB = {"email": "bob@example.com", "phone": "+1 415 555 2672", "name": "Bob", "timezone": "UTC"}
SHORT = cadence(
    {"channel": "onsite"},
    {"channel": "email", "delay": "1m"},
    {"channel": "sms", "delay": "1h"},
    {"channel": "email", "delay": "1d", "template": "cart_last_chance"},
    abandon_after="1m",
    expire_after="2d",
    frequency_cap=None,
)


def by_channel(body: dict[str, Any]) -> dict[str, tuple[int, int, float]]:
    return {f["channel"]: (f["sent"], f["recovered"], f["revenue"]) for f in body["by_channel"]}


async def run_two_carts(stack: Stack, retailer: RetailerClient) -> None:
    """c1 (Ana, nudged on site) buys after the first email; c2 (Bob) gets the whole cadence."""
    await retailer.set_cadence(SHORT)
    await retailer.event("c1", "item_added", items=items(50.0), customer=ANA, consent=ALL_CONSENT)
    await retailer.event("c1", "exit_intent")
    await wait_for_nudge(retailer, "c1")
    await retailer.event("c2", "item_added", items=items(80.0), customer=BOB, consent=ALL_CONSENT)

    await stack.env.sleep(timedelta(minutes=3))  # both abandoned at +1m, first emails at +2m

    async def first_emails() -> list[dict[str, Any]]:
        emails = await retailer.outbox(channel="email")
        return emails if len(emails) == 2 else []

    emails = {m["cart_id"]: m for m in await eventually(first_emails, what="the first emails")}
    after_email = datetime.fromisoformat(emails["c1"]["created_at"]) + timedelta(seconds=1)
    assert after_email < utcnow() + timedelta(minutes=5), "too far ahead to post as occurred_at"
    ordered = await retailer.event(
        "c1",
        "order_placed",
        order={"order_id": "o-1", "value": 55.0},
        occurred_at=after_email.isoformat(),
    )
    assert ordered["workflow_actions"] == ["order_placed"]

    assert (await retailer.result("c1")).stage == "recovered"
    assert (await retailer.result("c2")).stage == "completed"


async def test_report_shows_the_funnel_and_the_recovered_order(stack: Stack) -> None:
    retailer = await stack.retailer()
    await run_two_carts(stack, retailer)

    figures = await report(retailer)

    assert {k: figures[k] for k in figures if k.startswith("carts_") or k.endswith("_24h")} == {
        "carts_started": 2,
        "carts_abandoned": 2,
        "carts_nudged": 1,
        "carts_recovered": 1,
        "contacted_within_24h": 2,
    }
    assert (figures["revenue_recovered"], figures["recovery_rate"]) == (55.0, 0.5)
    assert by_channel(figures) == {
        "onsite": (1, 0, 0.0),
        "email": (3, 1, 55.0),
        "sms": (1, 0, 0.0),
    }
    first_email = next(f for f in figures["by_step"] if f["step_index"] == 1)
    assert (first_email["sent"], first_email["recovered"], first_email["conversion_rate"]) == (
        2,
        1,
        0.5,
    )
    assert figures["study_test"] == {
        "abandoned_with_contact": 2,
        "nudged_on_site": 0.5,
        "emailed_within_24h": 1.0,
        "sms_or_call_within_7d": 0.5,
    }
    c1 = await cart(retailer, "c1")
    assert (c1["status"], c1["recovered_step"], c1["recovered_channel"]) == ("ordered", 1, "email")


async def test_a_purchase_after_the_journey_ended_is_still_credited(stack: Stack) -> None:
    """The workflow ends after its last step (no timer until the cart expires); an order that
    comes later is attributed by the API, so the cart and the report say recovered."""
    retailer = await stack.retailer()
    await retailer.set_cadence(
        cadence(
            {"channel": "email", "delay": "1m"},
            {"channel": "sms", "delay": "2m"},
            abandon_after="1m",
            frequency_cap=None,
        )
    )
    await retailer.event("c1", "item_added", items=items(80.0), customer=BOB, consent=ALL_CONSENT)
    assert (await retailer.result("c1")).stage == "completed"
    [_, sms] = await retailer.outbox()
    after_sms = datetime.fromisoformat(sms["created_at"]) + timedelta(seconds=1)

    ordered = await retailer.event(
        "c1",
        "order_placed",
        order={"order_id": "o-9", "value": 80.0},
        occurred_at=after_sms.isoformat(),
    )

    assert ordered["workflow_actions"] == ["order_placed"]  # to a closed workflow: a no-op
    c1 = await cart(retailer, "c1")
    assert (c1["status"], c1["recovered_step"], c1["recovered_channel"]) == ("ordered", 1, "sms")
    assert c1["abandoned_at"] is not None
    figures = await report(retailer)
    assert (figures["carts_abandoned"], figures["carts_recovered"]) == (1, 1)
    assert by_channel(figures)["sms"] == (1, 1, 80.0)


async def test_report_period_covers_carts_created_in_it(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event("c1", "item_added", items=items(50.0), customer=ANA, consent=ALL_CONSENT)
    now = utcnow()

    before = await report(retailer, until=(now - timedelta(hours=1)).isoformat())
    around = await report(
        retailer,
        since=(now - timedelta(hours=1)).isoformat(),
        until=(now + timedelta(hours=1)).isoformat(),
    )

    assert before["carts_started"] == 0
    assert around["carts_started"] == 1
    assert around["carts_abandoned"] == around["carts_recovered"] == 0


async def test_outbox_filters_by_channel_and_cart(stack: Stack) -> None:
    retailer = await stack.retailer()
    await run_two_carts(stack, retailer)

    everything = await retailer.outbox()
    emails = await retailer.outbox(channel="email")
    sms = await retailer.outbox(channel="sms")

    journey = [(m["cart_id"], m["channel"], m["template"]) for m in everything]
    assert journey[0] == ("c1", "onsite", "onsite_help")
    assert sorted(journey[1:3]) == [
        ("c1", "email", "cart_reminder"),
        ("c2", "email", "cart_reminder"),
    ]
    assert journey[3:] == [("c2", "sms", "cart_sms"), ("c2", "email", "cart_last_chance")]
    assert [m["channel"] for m in emails] == ["email"] * 3
    assert {m["to_address"] for m in emails} == {"ana@example.com", "bob@example.com"}
    assert [(m["cart_id"], m["to_address"]) for m in sms] == [("c2", "+14155552672")]
    assert [m["channel"] for m in await retailer.outbox(cart_id="c1")] == ["onsite", "email"]
    assert await retailer.outbox(channel="voice") == []
    newest = await retailer.outbox(limit=1)
    assert [m["template"] for m in newest] == ["cart_last_chance"]


async def test_an_order_after_the_nudge_is_credited_to_the_nudge(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event("c1", "item_added", items=items(90.0), customer=ANA, consent=ALL_CONSENT)
    await retailer.event("c1", "exit_intent")
    nudge = await wait_for_nudge(retailer, "c1")
    await retailer.event("c1", "nudge_reply", reply="chat")

    ordered = await retailer.event("c1", "order_placed", order={"order_id": "o-9", "value": 90.0})

    assert ordered["workflow_actions"] == ["order_placed"]
    c1 = await cart(retailer, "c1")
    assert (c1["recovered_step"], c1["recovered_channel"]) == (nudge["step_index"], "onsite")
    assert (await retailer.result("c1")).stage == "purchased"
    figures = await report(retailer)
    assert (figures["carts_recovered"], figures["revenue_recovered"]) == (1, 90.0)
    assert by_channel(figures) == {"onsite": (1, 1, 90.0)}
    assert [m["channel"] for m in await retailer.outbox()] == ["onsite"]
