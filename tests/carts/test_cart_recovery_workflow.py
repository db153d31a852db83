"""The cart-recovery journey on the time-skipping server: days of cadence in milliseconds."""

from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import select
from werkzeug import Request, Response

from tests.conftest import RetailerClient, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.messaging.models import Suppression
from winback.platform.signing import SIGNATURE_HEADER, verify
from workflows import search_attributes as sa
from workflows.carts.cart_recovery import CartRecoveryWorkflow


async def _start_cart(retailer: RetailerClient, cart_id: str = "c1", value: float = 120.0) -> None:
    await retailer.event(
        cart_id, "item_added", items=items(value), customer=SHOPPER, consent=ALL_CONSENT
    )


def _journey(outbox: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(m["channel"], m["template"]) for m in outbox]


async def test_happy_path_runs_the_default_cadence_and_ends_after_its_last_step(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    await _start_cart(retailer)
    await retailer.event("c1", "exit_intent")

    result = await retailer.result("c1")

    assert result.stage == "completed"
    sent = await retailer.outbox()
    assert _journey(sent) == [
        ("onsite", "onsite_help"),
        ("email", "cart_reminder"),
        ("sms", "cart_sms"),
        ("email", "cart_last_chance"),
    ]
    email = sent[1]
    assert email["to_address"] == "ana@example.com"
    assert "Item 0" in email["body"] and "https://shop.example.com/cart/c1" in email["body"]
    assert email["subject"] == "You left something in your cart at Acme"
    assert sent[2]["to_address"] == "+14155552671"
    skipped = [s for s in result.steps if s.outcome == "skipped"]
    assert [(s.channel, s.reason) for s in skipped] == [
        ("agent_call", "cart value 120.00 below 200.00")
    ]


@pytest.mark.parametrize(
    ("wait", "expected_stage", "sent_before"),
    [
        (timedelta(minutes=5), "purchased", []),
        (timedelta(hours=2), "recovered", ["email"]),
        (timedelta(days=2), "recovered", ["email", "sms"]),
        # The journey ended after the last email: the workflow says so, and the API credits the
        # purchase (tests/carts/test_report_and_outbox_api.py, the late purchase).
        (timedelta(days=4), "completed", ["email", "sms", "email"]),
    ],
    ids=["before-abandonment", "after-email", "after-sms", "after-last-email"],
)
async def test_purchase_stops_the_journey_at_once(
    stack: Stack, wait: timedelta, expected_stage: str, sent_before: list[str]
) -> None:
    retailer = await stack.retailer()
    await _start_cart(retailer)
    await stack.env.sleep(wait)

    await retailer.event("c1", "order_placed", order={"order_id": "o-1", "value": 120.0})
    result = await retailer.result("c1")

    assert result.stage == expected_stage
    assert [m["channel"] for m in await retailer.outbox()] == sent_before


async def test_opt_out_mid_cadence_stops_and_suppresses(stack: Stack) -> None:
    retailer = await stack.retailer()
    await _start_cart(retailer)
    await stack.env.sleep(timedelta(hours=2))

    await retailer.event("c1", "opt_out")
    result = await retailer.result("c1")

    assert result.stage == "opted_out"
    assert [m["channel"] for m in await retailer.outbox()] == ["email"]
    async with stack.sessions() as session:
        rows = (await session.exec(select(Suppression))).all()
    assert {(r.channel, r.address) for r in rows} == {
        ("email", "ana@example.com"),
        ("sms", "+14155552671"),
        ("voice", "+14155552671"),
    }


async def test_opting_out_of_sms_only_skips_the_sms_and_keeps_email(stack: Stack) -> None:
    retailer = await stack.retailer()
    await _start_cart(retailer)
    await retailer.event("c1", "opt_out", channels=["sms"])

    result = await retailer.result("c1")

    assert [m["channel"] for m in await retailer.outbox()] == ["email", "email"]
    sms = next(s for s in result.steps if s.channel == "sms")
    assert (sms.outcome, sms.reason) == ("skipped", "no sms consent")


async def test_quiet_hours_postpone_the_sms_instead_of_skipping_it(stack: Stack) -> None:
    retailer = await stack.retailer()
    start = await stack.env.get_current_time()
    # Quiet hours (UTC, the shopper's zone) that cover the SMS due at about start + 2h30m.
    quiet_start = (start + timedelta(hours=1)).strftime("%H:00")
    quiet_end = (start + timedelta(hours=6)).strftime("%H:00")
    await retailer.set_cadence(
        cadence(
            {"channel": "sms", "delay": "2h"},
            quiet_hours={"start": quiet_start, "end": quiet_end},
        )
    )
    await _start_cart(retailer)

    result = await retailer.result("c1")

    [sms] = await retailer.outbox()
    sent_at = sms["created_at"][11:16]
    assert sent_at == quiet_end, f"sent at {sent_at}, quiet hours {quiet_start}-{quiet_end}"
    assert [s.outcome for s in result.steps] == ["sent"]


async def test_frequency_cap_holds_across_carts_of_one_shopper(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.set_cadence(
        cadence(
            {"channel": "email", "delay": "1h"},
            frequency_cap={"max_messages": 1, "per": "1d"},
        )
    )
    await _start_cart(retailer, "c1")
    await _start_cart(retailer, "c2")

    results = [await retailer.result("c1"), await retailer.result("c2")]

    assert len(await retailer.outbox()) == 1
    reasons = sorted(s.reason or "" for r in results for s in r.steps)
    assert reasons[0] == "" and reasons[1].startswith("frequency cap")


async def test_anonymous_cart_gets_the_nudge_and_waits_for_a_contact(stack: Stack) -> None:
    retailer = await stack.retailer()
    started = await retailer.event("c1", "item_added", items=items(80.0))
    assert started["workflow_id"] is None  # minor edits of an anonymous cart start nothing

    nudged = await retailer.event("c1", "idle")
    assert nudged["workflow_actions"] == ["queued"]  # the relay starts it, with the nudge
    result = await retailer.result("c1")

    assert result.stage == "expired"
    assert [m["channel"] for m in await retailer.outbox()] == ["onsite"]


async def test_contact_given_after_abandonment_lets_the_follow_ups_go(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event("c1", "item_added", items=items(80.0))
    await retailer.event("c1", "exit_intent")
    await stack.env.sleep(timedelta(hours=3))
    assert (await retailer.workflow("c1").query(CartRecoveryWorkflow.state)).next_channel == "email"

    told = await retailer.event("c1", "activity", customer=SHOPPER, consent=ALL_CONSENT)
    assert told["workflow_actions"] == ["contact_known"]
    await retailer.result("c1")

    assert [m["channel"] for m in await retailer.outbox()] == ["onsite", "email", "sms", "email"]


async def test_the_journey_is_readable_without_a_search_attribute_upsert(stack: Stack) -> None:
    """Retailer and value are set at the start; the stage changes cost no action (each upsert
    is billed): the query (and the current details in the UI) show it."""
    retailer = await stack.retailer()
    await _start_cart(retailer)
    await stack.env.sleep(timedelta(hours=2))

    description = await retailer.workflow("c1").describe()

    attributes = description.typed_search_attributes
    assert attributes.get(sa.RETAILER) == retailer.id
    assert attributes.get(sa.CART_VALUE) == 120.0
    assert "Cart c1 of Acme" in (await description.static_summary() or "")
    history = await retailer.workflow("c1").fetch_history()
    upserts = "upsert_workflow_search_attributes_event_attributes"
    assert not [e for e in history.events if e.HasField(upserts)]
    state = await retailer.workflow("c1").query(CartRecoveryWorkflow.state)
    assert (state.stage, state.next_channel) == ("contacting", "sms")


async def test_nudge_is_pushed_to_the_retailer_webhook_signed(
    stack: Stack, httpserver: HTTPServer
) -> None:
    received: list[Request] = []

    def capture(request: Request) -> Response:
        received.append(request)
        return Response(status=204)

    httpserver.expect_request("/nudges", method="POST").respond_with_handler(capture)
    retailer = await stack.retailer(webhook_url=httpserver.url_for("/nudges"))
    await _start_cart(retailer)
    await retailer.event("c1", "exit_intent")
    await retailer.event("c1", "order_placed", order={"order_id": "o-1", "value": 120.0})

    assert (await retailer.result("c1")).stage == "purchased"

    [request] = received
    body = request.get_data()
    assert verify(retailer.webhook_secret, body, request.headers[SIGNATURE_HEADER])
    assert not verify("another-secret", body, request.headers[SIGNATURE_HEADER])
    assert request.json is not None and request.json["nudge"]["cart_id"] == "c1"
