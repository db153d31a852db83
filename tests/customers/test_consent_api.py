"""Consent per customer and channel, with the source and time of every change."""

import pytest
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from tests.support.helpers import SHOPPER, items
from winback.customers.consent_models import ConsentChange
from winback.customers.models import Customer

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]


async def _customer_id(stack: Stack, retailer_id: str) -> int:
    async with stack.sessions() as session:
        customer = (
            await session.exec(select(Customer).where(Customer.retailer_id == retailer_id))
        ).one()
    assert customer.id is not None
    return customer.id


async def _consent(retailer: RetailerClient, customer_id: int) -> dict:
    response = await retailer.get(f"/v1/customers/{customer_id}/consent")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _changes(view: dict) -> list[tuple[str, bool, str]]:
    return [(c["channel"], c["granted"], c["source"]) for c in view["history"]]


async def test_changes_are_recorded_once_with_their_source(stack: Stack) -> None:
    acme = await stack.retailer("Acme")
    await acme.event(
        "c1",
        "item_added",
        items=items(20.0),
        customer=SHOPPER,
        consent={"email": True, "sms": True, "voice": False},
    )
    customer_id = await _customer_id(stack, acme.id)

    # The same consent again, on another cart: nothing changes, nothing is written.
    await acme.event(
        "c2", "item_added", items=items(5.0), customer=SHOPPER, consent={"email": True, "sms": True}
    )
    unchanged = await _consent(acme, customer_id)
    await acme.event("c1", "opt_out", channels=["sms"])
    after_opt_out = await _consent(acme, customer_id)
    by_api = await acme.put(f"/v1/customers/{customer_id}/consent", {"voice": True, "sms": False})

    assert unchanged["consent"] == {"email": True, "sms": True, "voice": False}
    assert _changes(unchanged) == [("email", True, "cart_event"), ("sms", True, "cart_event")]
    assert after_opt_out["consent"] == {"email": True, "sms": False, "voice": False}
    assert _changes(after_opt_out)[-1] == ("sms", False, "cart_event")
    assert by_api.status_code == 200, by_api.text
    assert by_api.json()["consent"] == {"email": True, "sms": False, "voice": True}
    assert _changes(by_api.json())[3:] == [("voice", True, "api")]  # sms was already off
    async with stack.sessions() as session:
        rows = (await session.exec(select(ConsentChange))).all()
    assert len(rows) == 4 and all(r.at is not None for r in rows)


async def test_feedback_consent_is_recorded_as_feedback(stack: Stack) -> None:
    from winback.customers.identity import ConsentIn, CustomerIn, upsert_customer

    acme = await stack.retailer("Acme")
    async with stack.sessions() as session:
        customer = await upsert_customer(
            session,
            retailer_id=acme.id,
            given=CustomerIn(email="bo@example.com"),
            consent=ConsentIn(email=True),
            consent_source="feedback",
        )
        await session.commit()
        assert customer.id is not None
        customer_id = customer.id

    assert _changes(await _consent(acme, customer_id)) == [("email", True, "feedback")]


async def test_another_retailers_customer_is_not_found(stack: Stack) -> None:
    acme, other = await stack.retailer("Acme"), await stack.retailer("Other")
    await acme.event(
        "c1", "item_added", items=items(20.0), customer=SHOPPER, consent={"email": True}
    )
    customer_id = await _customer_id(stack, acme.id)

    read = await other.get(f"/v1/customers/{customer_id}/consent")
    write = await other.put(f"/v1/customers/{customer_id}/consent", {"email": False})

    assert (read.status_code, write.status_code) == (404, 404)
    assert (await _consent(acme, customer_id))["consent"]["email"] is True
