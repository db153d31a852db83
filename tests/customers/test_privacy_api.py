"""A customer's data on request, for any retailer: everything exported as JSON, or erased
(PII gone from every table, the journeys stopped, the address kept only as a digest that still
stops every send), each request audited."""

import uuid
from typing import Any

import pytest
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart, eventually, signals
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.carts.models import CartEvent
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.messaging.models import Message, Suppression

pytestmark = pytest.mark.both_databases

WHO = "dpo@acme.example, ticket 4411"
RULES = {
    "business_units": [
        {"id": "store-a", "name": "Store A", "owner": {"name": "Olga", "email": "olga@acme.test"}}
    ],
    "default_business_unit": "store-a",
}


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer()
    # A second email a day later keeps the journey running after the first (it ends after its
    # last step), so the erasure has a workflow to stop.
    last = {"channel": "email", "delay": "1d", "template": "cart_last_chance"}
    await retailer.set_cadence(cadence({"channel": "email", "delay": "1h"}, last))
    return retailer


async def shopper_with_history(stack: Stack, retailer: RetailerClient) -> None:
    """Ana: a cart emailed after abandonment, still running; an unhappy answer with a case."""
    await retailer.event(
        "c1",
        "item_added",
        items=items(80.0),
        page="/p/trail-shoe",
        customer=SHOPPER,
        consent=ALL_CONSENT,
    )
    await stack.env.sleep(2 * 3600)
    await eventually(lambda: retailer.outbox(channel="email"), what="the email to Ana")
    assert (await retailer.put("/v1/alert-rules", RULES)).status_code == 201
    answer = {
        "idempotency_key": uuid.uuid4().hex,
        "channel": "web",
        "scale": "nps",
        "score": 2,
        "comment": "The sole came off after a week, call me on 612 345 678",
        "customer": {"email": SHOPPER["email"], "name": SHOPPER["name"]},
    }
    assert (await retailer.post("/v1/feedback", answer)).status_code in (200, 201, 202)


async def erase(retailer: RetailerClient, **subject: Any) -> dict[str, Any]:
    response = await retailer.post("/v1/customers/erase", {**subject, "requested_by": WHO})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_export_holds_everything_about_the_shopper(
    stack: Stack, retailer: RetailerClient
) -> None:
    await shopper_with_history(stack, retailer)

    response = await retailer.post(
        "/v1/customers/export", {"email": "ANA@example.com", "requested_by": WHO}
    )

    assert response.status_code == 200, response.text
    [ana] = response.json()["customers"]
    assert ana["customer"]["email"] == "ana@example.com"
    assert ana["customer"]["phone"] == "+14155552671"
    assert [c["cart_id"] for c in ana["carts"]] == ["c1"]
    assert ana["carts"][0]["items"][0]["sku"] == "SKU-0"
    assert ana["cart_events"][0]["payload"]["customer"]["email"] == "ana@example.com"
    assert [m["channel"] for m in ana["messages"]] == ["email"]
    assert {c["channel"] for c in ana["consent_history"]} == {"email", "sms", "voice"}
    assert ana["feedback_answers"][0]["comment"].startswith("The sole came off")
    assert len(ana["cases"]) == 1
    [audit] = (await retailer.get("/v1/privacy-requests")).json()
    assert (audit["kind"], audit["source"], audit["subject"]) == (
        "export",
        "api",
        "a***@example.com",
    )
    assert audit["requested_by"].startswith(WHO)
    assert audit["summary"] == {"customers": 1, "carts": 1, "messages": 1, "feedback_answers": 1}


async def test_erasure_removes_the_pii_and_stops_the_journeys(
    stack: Stack, retailer: RetailerClient
) -> None:
    await shopper_with_history(stack, retailer)
    async with stack.sessions() as session:
        case = (await session.exec(select(FeedbackCase))).one()

    done = await erase(retailer, phone="(415) 555-2671")

    assert done["erased"]["customers"] == 1
    assert done["erased"]["messages"] == 1 and done["erased"]["feedback_answers"] == 1
    assert f"cart-{retailer.id}-c1" in done["workflows_stopped"]
    assert case.workflow_id in done["workflows_stopped"]
    result = await retailer.result("c1")
    assert result.stage == "opted_out"
    assert "opted_out" in await signals(retailer, "c1")  # the history says why it stopped
    async with stack.sessions() as session:
        ana = (await session.exec(select(Customer))).one()
        event = (await session.exec(select(CartEvent))).first()
        [message] = (await session.exec(select(Message).where(Message.cart_id == "c1"))).all()
        answer = (await session.exec(select(FeedbackAnswer))).one()
        suppressed = (await session.exec(select(Suppression))).all()
    assert (ana.email, ana.phone, ana.name, ana.consent_email) == (None, None, None, False)
    assert event is not None and "customer" not in event.payload and "page" not in event.payload
    assert (message.to_address, message.body, message.subject) == (None, "", None)
    assert answer.comment is None and answer.score == 2  # the figures stay, about nobody
    assert {s.channel for s in suppressed} == {"all"}
    assert all(s.address.startswith("hmac-sha256:") for s in suppressed)
    assert not any(SHOPPER["email"] in s.address for s in suppressed)
    stored = await cart(retailer, "c1")
    assert (stored["status"], stored["last_page"]) == ("opted_out", None)
    export = await retailer.post(
        "/v1/customers/export", {"email": SHOPPER["email"], "requested_by": WHO}
    )
    assert export.json()["customers"] == []
    audits = (await retailer.get("/v1/privacy-requests")).json()
    assert [a["kind"] for a in audits] == ["export", "erase"]
    assert SHOPPER["email"] not in str(audits)


async def test_an_erased_shopper_is_never_messaged_again(
    stack: Stack, retailer: RetailerClient
) -> None:
    await erase(retailer, email=SHOPPER["email"], phone=SHOPPER["phone"])

    await retailer.event(
        "c2", "item_added", items=items(50.0), customer=SHOPPER, consent=ALL_CONSENT
    )  # back weeks later as a "new" customer, consenting again
    result = await retailer.result("c2")

    emails = [(s.outcome, s.reason) for s in result.steps if s.channel == "email"]
    assert emails == [("skipped", "address is on the suppression list")] * 2
    assert await retailer.outbox() == []


async def test_erasing_twice_is_harmless(stack: Stack, retailer: RetailerClient) -> None:
    await retailer.event("c1", "item_added", items=items(10.0), customer=SHOPPER)
    first = await erase(retailer, email=SHOPPER["email"])
    again = await erase(retailer, email=SHOPPER["email"])

    assert first["erased"]["customers"] == 1
    assert again["erased"]["customers"] == 0
    assert again["erased"]["suppressed_addresses"] == 1  # the address asked about, again
    async with stack.sessions() as session:
        rows = (await session.exec(select(Suppression))).all()
    assert len(rows) == 2  # one digest for the email, one for the phone: no more


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requested_by": WHO}, "at least one"),
        ({"email": "not-an-email", "requested_by": WHO}, "email"),
        ({"phone": "12", "requested_by": WHO}, "phone"),
        ({"email": "ana@example.com"}, "requested_by"),
    ],
)
async def test_a_bad_request_is_a_4xx_that_says_why(
    retailer: RetailerClient, body: dict[str, Any], field: str
) -> None:
    for route in ("/v1/customers/export", "/v1/customers/erase"):
        response = await retailer.post(route, body)
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"]
    assert (await retailer.get("/v1/privacy-requests")).json() == []


async def test_only_the_retailer_itself_can_ask(stack: Stack, retailer: RetailerClient) -> None:
    await retailer.event("c1", "item_added", items=items(10.0), customer=SHOPPER)
    other = await stack.retailer("Other")

    anonymous = await stack.api.post(
        "/v1/customers/erase", json={"email": SHOPPER["email"], "requested_by": WHO}
    )
    theirs = await other.post(
        "/v1/customers/export", {"email": SHOPPER["email"], "requested_by": WHO}
    )

    assert anonymous.status_code == 401
    assert theirs.json()["customers"] == []
    assert (await cart(retailer, "c1"))["customer_email"] == SHOPPER["email"]
