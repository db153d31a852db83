"""A held-out cart runs its whole cadence on the time-skipping server next to a treated one:
the workflow is unchanged, every due step is recorded ``held_out``, nothing is in the outbox,
and the report compares the two groups."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from tests.carts.test_client_api import client_post, event, publishable_key, visitor
from tests.carts.test_client_batch import beacon
from tests.conftest import RetailerClient, Stack
from tests.support.api import cart, eventually, pending_nudges, report
from tests.support.helpers import ALL_CONSENT, cadence, items
from winback.carts.holdout import HELD_OUT, TREATED, holdout_bucket
from winback.carts.models import Cart
from winback.platform.clock import utcnow
from winback.platform.db import session_scope
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases
CHANNELS = ("onsite", "email", "sms", "voice", "agent_call")

ANA = {"email": "ana@example.com", "phone": "+1 415 555 2671", "name": "Ana", "timezone": "UTC"}
BOB = {"email": "bob@example.com", "phone": "+1 415 555 2672", "name": "Bob", "timezone": "UTC"}
SHORT = cadence(
    {"channel": "onsite"},
    {"channel": "email", "delay": "1m"},
    {"channel": "sms", "delay": "1h"},
    abandon_after="1m",
    expire_after="1d",
    frequency_cap=None,
    holdout_percent=50,
    attribution_windows={"email": "3d", "sms": "1d"},
)


async def _cart_in(stack: Stack, retailer: RetailerClient, cart_id: str, group: str) -> None:
    """A cart whose group is fixed before its first touch, as the hash would have decided it
    (which group a given shopper draws depends on the retailer's random salt)."""
    await retailer.event(cart_id, "item_added", items=items(50.0))  # no contact: nothing yet
    async with session_scope(stack.sessions) as session:
        row = (
            await session.exec(
                select(Cart).where(Cart.retailer_id == retailer.id, Cart.cart_id == cart_id)
            )
        ).one()
        assert row.holdout_bucket is None and not row.workflow_started
        row.holdout_bucket, row.holdout_group = (0 if group == HELD_OUT else 9999), group
        session.add(row)


async def test_a_held_out_cart_runs_its_cadence_and_nothing_is_sent(stack: Stack) -> None:
    retailer = await stack.retailer()
    saved = await retailer.set_cadence(SHORT)
    assert saved["holdout_percent"] == 50 and saved["attribution_windows"]["sms"] == "1d"
    await _cart_in(stack, retailer, "c1", HELD_OUT)
    await _cart_in(stack, retailer, "c2", TREATED)
    for cart_id, shopper in (("c1", ANA), ("c2", BOB)):
        await retailer.event(cart_id, "activity", customer=shopper, consent=ALL_CONSENT)
        await retailer.event(cart_id, "exit_intent")

    async def held_nudge() -> list[dict[str, Any]]:
        return await retailer.outbox(held_out="true", channel="onsite")

    await eventually(held_nudge, what="the held-out nudge")
    assert await pending_nudges(retailer, "c1") == []  # the storefront never shows it
    await eventually(lambda: pending_nudges(retailer, "c2"), what="the treated nudge")

    await stack.env.sleep(timedelta(minutes=3))  # abandoned at +1m, email due at +2m

    async def held_email() -> list[dict[str, Any]]:
        return await retailer.outbox(held_out="true", channel="email")

    [email] = await eventually(held_email, what="the held-out email")
    after_email = datetime.fromisoformat(email["created_at"]) + timedelta(seconds=1)
    assert after_email < utcnow() + timedelta(minutes=5), "too far ahead to post as occurred_at"
    await retailer.event(
        "c1",
        "order_placed",
        order={"order_id": "o-1", "value": 50.0},
        occurred_at=after_email.isoformat(),
    )
    assert (await retailer.result("c1")).stage == "recovered"
    assert (await retailer.result("c2")).stage == "completed"

    sent = await retailer.outbox()
    assert {m["cart_id"] for m in sent} == {"c2"}  # the held-out shopper got nothing at all
    assert [m["channel"] for m in sent] == ["onsite", "email", "sms"]
    held = await retailer.outbox(held_out="true")
    assert [(m["cart_id"], m["channel"], m["status"]) for m in held] == [
        ("c1", "onsite", "held_out"),
        ("c1", "email", "held_out"),
    ]
    assert held[1]["to_address"] == "ana@example.com" and held[1]["template"] == "cart_reminder"

    c1 = await cart(retailer, "c1")
    assert (c1["holdout_group"], c1["status"], c1["recovered_channel"]) == (
        "held_out",
        "ordered",
        None,
    )
    figures = await report(retailer)
    assert figures["carts_recovered"] == 0 and figures["carts_nudged"] == 1
    holdout = figures["holdout"]
    assert (holdout["treated"]["carts"], holdout["treated"]["conversions"]) == (1, 0)
    assert (holdout["held_out"]["carts"], holdout["held_out"]["conversions"]) == (1, 1)
    assert holdout["lift"] == -1.0 and holdout["incremental_revenue"] == -50.0
    assert holdout["messages_held_out"] == 2 and holdout["verdict"] == "not significant"


async def test_the_openapi_document_types_the_holdout_section(stack: Stack) -> None:
    document = (await stack.api.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    report_schema = schemas["CartRecoveryReport"]["properties"]["holdout"]
    assert {"$ref": "#/components/schemas/HoldoutFigures"} in report_schema["anyOf"]
    holdout = schemas["HoldoutFigures"]["properties"]
    assert set(holdout) >= {"treated", "held_out", "incremental_revenue", "lift", "verdict"}
    assert holdout["verdict"]["enum"] == ["significant", "not significant"]
    assert holdout["method"]["const"] == "newcombe_hybrid_score"
    cadence_schema = schemas["CadenceIn"]["properties"]
    assert (
        cadence_schema["holdout_percent"]["minimum"],
        cadence_schema["holdout_percent"]["maximum"],
    ) == (0, 50)
    windows = [v for k, v in schemas.items() if k.startswith("AttributionWindows")]
    assert windows and all(set(w["properties"]) == {*CHANNELS} for w in windows)


async def test_an_anonymous_browser_keeps_one_group_across_its_carts(stack: Stack) -> None:
    """The first event of a cart is already an exit intent: the group is decided by the browser
    (the visitor hash), not the cart, so the same browser draws the same bucket twice."""
    retailer = await stack.retailer()
    await retailer.set_cadence(SHORT)
    key, browser = await publishable_key(retailer), visitor()
    for cart_id in ("a1", "a2"):
        response = await client_post(
            stack, key, f"/carts/{cart_id}/events", event("exit_intent"), browser
        )
        assert response.status_code == 202, response.text
    async with stack.sessions() as session:
        shop = await session.get(Retailer, retailer.id)
        rows = (await session.exec(select(Cart).where(Cart.retailer_id == retailer.id))).all()
    assert shop is not None and shop.holdout_salt and len(rows) == 2
    expected = holdout_bucket(shop.holdout_salt, retailer.id, f"visitor:{rows[0].visitor_hash}")
    assert [r.holdout_bucket for r in rows] == [expected, expected]
    assert rows[0].holdout_group == rows[1].holdout_group is not None


async def test_a_beacon_batch_groups_a_cart_whose_nudge_it_makes_due(stack: Stack) -> None:
    """The batch route's set-based path decides the group too, by the same rule: the exit
    intent makes the nudge due, so the cart is grouped (by its browser) before any workflow."""
    retailer = await stack.retailer()
    await retailer.set_cadence(SHORT)
    key, browser = await publishable_key(retailer), visitor()
    body = {
        "visitor": browser,
        "events": [
            {**event("item_added", items=items(30.0)), "cart_id": "b1"},  # not touchable yet
            {**event("exit_intent"), "cart_id": "b1"},
            {**event("activity", page="/p"), "cart_id": "b2"},  # never touchable: no group
        ],
    }
    response = await beacon(stack, key, body)
    assert response.status_code == 202, response.text
    async with stack.sessions() as session:
        shop = await session.get(Retailer, retailer.id)
        rows = {
            r.cart_id: r
            for r in (await session.exec(select(Cart).where(Cart.retailer_id == retailer.id)))
        }
    assert shop is not None and shop.holdout_salt
    expected = holdout_bucket(shop.holdout_salt, retailer.id, f"visitor:{rows['b1'].visitor_hash}")
    assert rows["b1"].holdout_bucket == expected and rows["b1"].holdout_group in (HELD_OUT, TREATED)
    assert rows["b2"].holdout_bucket is None and rows["b2"].holdout_group is None
