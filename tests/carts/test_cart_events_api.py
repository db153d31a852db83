"""Cart events in: stored cheaply, and turned into as few workflow actions as possible."""

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart, eventually, pending_nudges, signals, wait_for_nudge
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.messaging.templates import DEFAULT_TEMPLATES
from winback.platform.clock import utcnow

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    return await stack.retailer()


async def start(retailer: RetailerClient, cart_id: str, **fields: Any) -> dict[str, Any]:
    accepted = await retailer.event(
        cart_id, "item_added", customer=SHOPPER, consent=ALL_CONSENT, **fields
    )
    assert accepted["workflow_actions"] == ["queued"], accepted  # the relay starts it
    return accepted


async def nudge_steps(retailer: RetailerClient, cart_id: str) -> list[dict[str, Any]]:
    """The workflow's record of the on-site step, once it has one."""

    async def probe() -> list[dict[str, Any]]:
        steps = (await cart(retailer, cart_id))["workflow"]["steps"]
        return [s for s in steps if s["channel"] == "onsite"]

    return await eventually(probe, what=f"the nudge step of {cart_id}")


async def test_a_resent_event_is_a_duplicate_and_changes_nothing(retailer: RetailerClient) -> None:
    first = await start(retailer, "c1", event_id="e1", items=items(40.0))
    snapshot = await cart(retailer, "c1")

    again = await retailer.event(
        "c1", "item_added", event_id="e1", items=items(999.0), customer=SHOPPER
    )
    nudge = await retailer.event("c1", "exit_intent", event_id="e2")
    nudge_again = await retailer.event("c1", "exit_intent", event_id="e2")

    assert first == {
        "cart_id": "c1",
        "duplicate": False,
        "workflow_id": f"cart-{retailer.id}-c1",
        "workflow_actions": ["queued"],
    }
    assert again == {**first, "duplicate": True, "workflow_actions": []}
    assert (nudge["duplicate"], nudge["workflow_actions"]) == (False, ["nudge_trigger"])
    assert (nudge_again["duplicate"], nudge_again["workflow_actions"]) == (True, [])
    assert (await cart(retailer, "c1"))["items"] == snapshot["items"]
    assert await signals(retailer, "c1") == ["nudge_trigger"]


async def test_an_older_event_never_overwrites_a_newer_snapshot(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(80.0, 20.0), page="/cart")
    newer = await cart(retailer, "c1")

    late = await retailer.event(
        "c1",
        "item_added",
        items=items(5.0),
        page="/old",
        occurred_at=(utcnow() - timedelta(minutes=10)).isoformat(),
    )

    assert (late["duplicate"], late["workflow_actions"]) == (False, [])
    after = await cart(retailer, "c1")
    assert [i["sku"] for i in after["items"]] == ["SKU-0", "SKU-1"]
    assert after["value"] == 100.0
    assert after["last_activity_at"] == newer["last_activity_at"]
    assert after["last_page"] == "/cart"


async def test_minor_edits_cost_no_workflow_actions(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(10.0))

    for i in range(10):
        if i % 2:
            accepted = await retailer.event("c1", "activity", page=f"/products/{i}")
        else:
            accepted = await retailer.event("c1", "item_added", items=items(10.0, float(i + 1)))
        assert accepted["workflow_actions"] == [], (i, accepted)

    assert await signals(retailer, "c1") == []
    after = await cart(retailer, "c1")
    assert (after["value"], after["last_page"]) == (19.0, "/products/9")
    assert after["workflow"]["stage"] == "active"


async def test_an_anonymous_cart_starts_on_a_nudge_trigger_and_learns_the_contact_later(
    retailer: RetailerClient,
) -> None:
    for accepted in [
        await retailer.event("anon", "item_added", items=items(25.0)),
        await retailer.event("anon", "activity", page="/shoes"),
        await retailer.event("anon", "item_added", items=items(25.0, 15.0)),
    ]:
        assert (accepted["workflow_id"], accepted["workflow_actions"]) == (None, [])
    quiet = await cart(retailer, "anon")
    assert (quiet["workflow_id"], quiet["workflow"], quiet["value"]) == (None, None, 40.0)

    idle = await retailer.event("anon", "idle")
    assert idle["workflow_actions"] == ["queued"]  # started by the relay, with the nudge
    assert idle["workflow_id"] == f"cart-{retailer.id}-anon"
    await wait_for_nudge(retailer, "anon")
    assert (await cart(retailer, "anon"))["workflow"]["has_contact"] is False

    known = await retailer.event(
        "anon", "activity", customer={"email": "Ana@Example.com"}, consent={"email": True}
    )

    assert known["workflow_actions"] == ["contact_known"]
    assert await signals(retailer, "anon") == ["nudge_trigger", "contact_known"]

    async def has_contact() -> bool:
        return bool((await cart(retailer, "anon"))["workflow"]["has_contact"])

    await eventually(has_contact, what="the workflow to know the contact")
    assert (await cart(retailer, "anon"))["customer_email"] == "ana@example.com"
    later = await retailer.event("anon", "activity", customer={"email": "ana@example.com"})
    assert later["workflow_actions"] == []


@pytest.mark.parametrize(
    ("reply", "status"), [("callback", "accepted"), ("chat", "accepted"), ("dismiss", "dismissed")]
)
async def test_a_nudge_reply_is_recorded_on_the_nudge(
    retailer: RetailerClient, reply: str, status: str
) -> None:
    await start(retailer, "c1", items=items(60.0))
    assert (await retailer.event("c1", "exit_intent"))["workflow_actions"] == ["nudge_trigger"]
    nudge = await wait_for_nudge(retailer, "c1")
    assert (nudge["channel"], nudge["status"], nudge["offer"]) == (
        "onsite",
        "pending",
        "chat,callback",
    )
    assert nudge["body"] == DEFAULT_TEMPLATES["onsite_help"].body

    answered = await retailer.event("c1", "nudge_reply", reply=reply)

    # Only "call me back" changes the journey (an agent task); the others are just recorded.
    assert answered["workflow_actions"] == (["callback_requested"] if reply == "callback" else [])
    assert await pending_nudges(retailer, "c1") == []
    [message] = (await cart(retailer, "c1"))["messages"]
    assert (message["id"], message["reply"], message["status"]) == (nudge["id"], reply, status)


async def test_help_is_offered_once(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(60.0))
    await retailer.event("c1", "exit_intent")
    await wait_for_nudge(retailer, "c1")

    for trigger in ("idle", "exit_intent"):
        assert (await retailer.event("c1", trigger))["workflow_actions"] == []
    assert await signals(retailer, "c1") == ["nudge_trigger"]
    assert len(await nudge_steps(retailer, "c1")) == 1


async def test_several_variants_of_one_product_trigger_a_confusion_nudge(
    retailer: RetailerClient,
) -> None:
    accepted = await start(retailer, "c1", items=items(30.0, 30.0, product="boot-1"))

    assert accepted["workflow_actions"] == ["queued"]  # started by the relay, with the nudge
    await wait_for_nudge(retailer, "c1")
    [step] = await nudge_steps(retailer, "c1")
    assert (step["outcome"], step["reason"]) == ("sent", "confusion")


async def test_repeated_removals_trigger_a_confusion_nudge(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(30.0, 40.0))

    actions = [
        (await retailer.event("c1", "item_removed", items=items(30.0)))["workflow_actions"],
        (await retailer.event("c1", "item_removed", items=items(40.0)))["workflow_actions"],
        (await retailer.event("c1", "item_removed", items=[]))["workflow_actions"],
    ]

    assert actions == [[], [], ["nudge_trigger"]]
    [step] = await nudge_steps(retailer, "c1")
    assert step["reason"] == "confusion"


async def test_an_order_stops_the_journey_at_once(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(60.0))

    ordered = await retailer.event("c1", "order_placed", order={"order_id": "o-1", "value": 60.0})
    again = await retailer.event("c1", "order_placed", order={"order_id": "o-2", "value": 1.0})

    assert (ordered["workflow_actions"], again["workflow_actions"]) == (["order_placed"], [])
    result = await retailer.result("c1")
    assert (result.stage, result.steps) == ("purchased", [])
    body = await cart(retailer, "c1")
    assert (body["status"], body["order_id"], body["order_value"]) == ("ordered", "o-1", 60.0)
    assert await retailer.outbox() == []


async def test_an_opt_out_stops_the_journey_at_once(retailer: RetailerClient) -> None:
    await start(retailer, "c1", items=items(60.0))

    opted = await retailer.event("c1", "opt_out")

    assert opted["workflow_actions"] == ["opted_out"]
    assert (await retailer.result("c1")).stage == "opted_out"
    assert (await cart(retailer, "c1"))["status"] == "opted_out"
    assert await retailer.outbox() == []


async def test_an_anonymous_cart_bought_before_any_trigger_never_starts(
    retailer: RetailerClient,
) -> None:
    await retailer.event("c1", "item_added", items=items(60.0))

    ordered = await retailer.event(
        "c1", "order_placed", order={"order_id": "o-1", "value": 60.0}, customer=SHOPPER
    )

    assert (ordered["workflow_id"], ordered["workflow_actions"]) == (None, [])
    assert (await cart(retailer, "c1"))["status"] == "ordered"


async def test_a_national_phone_number_is_read_in_the_stores_country(stack: Stack) -> None:
    retailer = await stack.retailer(country="ES")
    national = {"email": "ana@example.com", "phone": "612 34 56 78"}

    await retailer.event("c1", "item_added", items=items(30.0), customer=national)
    refused = await retailer.post(
        "/v1/carts/c2/events",
        {"event_id": "e-bad", "type": "activity", "customer": {"phone": "12"}},
    )

    assert (await cart(retailer, "c1"))["customer_phone"] == "+34612345678"
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("customer.phone: '12' is not")
    assert (await retailer.get("/v1/carts/c2")).status_code == 404


async def test_concurrent_first_events_of_one_cart_are_all_accepted(stack: Stack) -> None:
    """The loser of the race to create the cart retries; its retry used to read the retailer
    the rollback had expired (a 500)."""
    retailer = await stack.retailer()
    body = {"type": "activity"}
    answers = await asyncio.gather(
        *(
            retailer.post("/v1/carts/c-race/events", {**body, "event_id": f"race-{n}"})
            for n in range(6)
        )
    )
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
