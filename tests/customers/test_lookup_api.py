"""The agent's view of the customer on the line: found by a phone typed any way, or an email.

The cart study behind the brief: 81% of agents could not see the caller's cart, and none knew
the caller had been browsing. Here the agent sees both, and what was already sent.
"""

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.agents import AgentClient, add_agent
from tests.support.api import eventually
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence
from winback.platform.clock import utcnow

pytestmark = pytest.mark.both_databases

BOOTS = [
    {
        "sku": "BOOT-42",
        "name": "Trail boots, size 42",
        "price": 180.0,
        "quantity": 2,
        "category": "Shoes",
        "url": "https://shop.example.com/p/trail-boots",
    },
    {"sku": "SOCK-1", "name": "Wool socks", "price": 90.0, "quantity": 1},
]


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await retailer.set_cadence(
        cadence(
            {"channel": "onsite"},
            {"channel": "email", "delay": "10m"},
            {"channel": "agent_call", "delay": "1h", "sla": "4h"},
        )
    )
    return retailer


@pytest.fixture
async def ana(acme: RetailerClient) -> AgentClient:
    return await add_agent(acme, "ana")


async def lookup(caller: AgentClient | RetailerClient, **params: str) -> dict[str, Any]:
    response = await caller.get("/v1/customers/lookup", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def browse_and_abandon(acme: RetailerClient) -> None:
    """Ana browses boots, reads the size guide, nearly leaves, and goes quiet for 2 hours."""
    await acme.event(
        "c1",
        "item_added",
        items=BOOTS,
        page="/p/trail-boots",
        customer=SHOPPER,  # she gave "+1 415 555 2671"
        consent=ALL_CONSENT,
    )
    await acme.event("c1", "activity", page="/p/trail-boots/size-guide")
    await acme.event("c1", "exit_intent", page="/cart")
    # An order of hers from long ago: not an open or recent cart.
    await acme.event(
        "old",
        "order_placed",
        order={"order_id": "o-1", "value": 20.0},
        customer=SHOPPER,
        occurred_at=(utcnow() - timedelta(days=40)).isoformat(),
    )
    await acme.stack.env.sleep(timedelta(hours=2))


async def test_a_shopper_who_browsed_and_left_is_found_by_a_phone_typed_differently(
    acme: RetailerClient, ana: AgentClient
) -> None:
    await browse_and_abandon(acme)

    async def with_task() -> dict[str, Any] | None:
        found = await lookup(ana, phone="(415) 555-2671")
        return found if found["customers"][0]["open_tasks"] else None

    found = await eventually(with_task, what="the call task in the customer view")

    assert found["phone"] == "+14155552671"
    (customer,) = found["customers"]
    assert customer["name"] == "Ana García"
    assert (customer["phone"], customer["email"]) == ("+14155552671", "ana@example.com")
    assert customer["consent"] == {"email": True, "sms": True, "voice": True}
    assert customer["suppressed"] == []

    (cart,) = customer["carts"]  # the order of 40 days ago is neither open nor recent
    assert (cart["cart_id"], cart["status"], cart["value"]) == ("c1", "abandoned", 450.0)
    assert [i["name"] for i in cart["items"]] == ["Trail boots, size 42", "Wool socks"]
    assert cart["link"] == "https://shop.example.com/cart/c1"
    assert cart["last_page"] == "/p/trail-boots/size-guide"
    assert cart["abandoned_at"] is not None

    assert [(a["type"], a["page"]) for a in customer["activity"]] == [
        ("exit_intent", "/cart"),
        ("activity", "/p/trail-boots/size-guide"),
        ("item_added", "/p/trail-boots"),
    ]

    sent = {m["channel"]: m for m in customer["messages"]}
    assert set(sent) == {"onsite", "email"}
    assert (sent["email"]["status"], sent["email"]["to"]) == ("sent", "ana@example.com")
    assert "Trail boots" in sent["email"]["body"]
    assert sent["onsite"]["status"] == "pending"  # the nudge, waiting for the storefront

    (task,) = customer["open_tasks"]
    assert (task["kind"], task["cart_id"], task["status"]) == ("call_shopper", "c1", "open")

    # The retailer's own key sees the same; the email finds her in any case.
    assert await lookup(acme, phone="+1 415-555-2671") == found
    by_email = await lookup(ana, email="ANA@Example.COM")
    assert by_email["email"] == "ana@example.com"
    assert by_email["customers"] == found["customers"]


async def test_phone_numbers_without_a_plus_are_read_in_the_retailers_country(
    stack: Stack,
) -> None:
    brit = await stack.retailer("Brit", country="gb")
    assert (await brit.get("/v1/retailer")).json()["country"] == "GB"
    await brit.event(
        "c1",
        "item_added",
        items=BOOTS,
        customer={"email": "tom@example.co.uk", "phone": "+44 20 7946 0958"},
    )

    found = await lookup(brit, phone="020 7946 0958")

    assert found["phone"] == "+442079460958"
    assert [c["email"] for c in found["customers"]] == ["tom@example.co.uk"]
    assert [c["cart_id"] for c in found["customers"][0]["carts"]] == ["c1"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"phone": "12"}, "phone", "'12' is not a valid phone number"),
        ({"phone": "abc"}, "phone", "'abc' is not a phone number"),
        ({"phone": "+1 415 555"}, "phone", "is not a valid phone number"),
        ({"email": "ana-at-example.com"}, "email", "is not an email address"),
        ({"phone": "+14155552671", "email": "ana@example.com"}, "phone", "exactly one"),
        ({}, "phone", "give exactly one of 'phone' or 'email'"),
    ],
)
async def test_a_malformed_lookup_is_422(
    ana: AgentClient, params: dict[str, str], field: str, message: str
) -> None:
    response = await ana.get("/v1/customers/lookup", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert message in response.json()["detail"]


async def test_nobody_found_is_404_and_other_retailers_customers_are_never_found(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    await acme.event("c1", "item_added", items=BOOTS, customer=SHOPPER, consent=ALL_CONSENT)
    assert (await lookup(ana, phone="4155552671"))["customers"][0]["email"] == "ana@example.com"

    unknown = await ana.get("/v1/customers/lookup", params={"phone": "+1 650 253 0000"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no customer with '+1 650 253 0000'"

    other = await stack.retailer("Other")
    their_agent = await add_agent(other, "ana")
    for caller in (other, their_agent):
        for params in ({"phone": "(415) 555-2671"}, {"email": "ana@example.com"}):
            response = await caller.get("/v1/customers/lookup", params=params)
            assert response.status_code == 404, (caller, params)


async def test_the_lookup_needs_an_agent_token_or_an_api_key(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    path, params = "/v1/customers/lookup", {"phone": "+14155552671"}
    missing = await stack.api.get(path, params=params)
    assert missing.status_code == 401
    assert missing.json()["detail"] == "missing X-Agent-Token (or X-API-Key) header"
    unknown = await stack.api.get(path, params=params, headers={"X-Agent-Token": "wba_x"})
    assert unknown.status_code == 401
    other = await stack.retailer("Other")
    mixed = {"X-Agent-Token": ana.token, "X-API-Key": other.api_key}
    assert (await stack.api.get(path, params=params, headers=mixed)).status_code == 401


@pytest.mark.parametrize("country", ["XX", "usa", "1", ""])
async def test_a_retailers_country_must_be_a_known_iso_code(stack: Stack, country: str) -> None:
    response = await stack.api.post(
        "/v1/retailers",
        json={"id": "shop", "name": "Shop", "country": country},
        headers={"X-Admin-Token": "test-admin-token"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "country"


async def test_a_retailers_country_can_be_changed_but_not_cleared(stack: Stack) -> None:
    retailer = await stack.retailer()
    assert (await retailer.get("/v1/retailer")).json()["country"] == "US"
    response = await retailer.stack.api.patch(
        "/v1/retailer", json={"country": "es"}, headers=retailer.headers
    )
    assert response.status_code == 200 and response.json()["country"] == "ES"
    cleared = await retailer.stack.api.patch(
        "/v1/retailer", json={"country": None}, headers=retailer.headers
    )
    assert cleared.status_code == 422
    assert cleared.json()["detail"] == "country: cannot be null"
    assert (await retailer.get("/v1/retailer")).json()["country"] == "ES"
