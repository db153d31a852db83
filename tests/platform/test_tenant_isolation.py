"""Tenant isolation: a retailer sees and changes only its own carts, messages and settings."""

import pytest

from tests.conftest import ADMIN_TOKEN, RetailerClient, Stack
from tests.support.api import cart, report, wait_for_nudge
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def alpha(stack: Stack) -> RetailerClient:
    return await stack.retailer("Alpha")


@pytest.fixture
async def beta(stack: Stack) -> RetailerClient:
    return await stack.retailer("Beta")


async def test_another_retailers_cart_nudges_and_messages_are_invisible(
    alpha: RetailerClient, beta: RetailerClient
) -> None:
    await alpha.event(
        "shared", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await alpha.event("shared", "exit_intent")
    nudge = await wait_for_nudge(alpha, "shared")

    response = await beta.get("/v1/carts/shared")
    assert response.status_code == 404
    assert response.json()["detail"] == "no cart 'shared'"
    nudges = await beta.get("/v1/carts/shared/nudges")
    assert nudges.status_code == 200 and nudges.json() == []
    assert await beta.outbox() == []
    assert await beta.outbox(cart_id="shared") == []
    assert await beta.outbox(channel="onsite") == []
    assert [m["id"] for m in await alpha.outbox()] == [nudge["id"]]


async def test_same_cart_id_at_another_retailer_is_another_cart(
    alpha: RetailerClient, beta: RetailerClient
) -> None:
    accepted = await alpha.event(
        "shared",
        "item_added",
        event_id="ev-1",
        items=items(50.0),
        customer=SHOPPER,
        consent=ALL_CONSENT,
    )
    before = await cart(alpha, "shared")

    # Same cart id, same event id, same shopper email: still B's own cart and customer.
    other = await beta.event(
        "shared",
        "item_added",
        event_id="ev-1",
        items=items(300.0, 20.0),
        customer={"email": SHOPPER["email"], "phone": "+44 20 7946 0958"},
        consent=ALL_CONSENT,
    )

    assert other["duplicate"] is False
    assert other["workflow_actions"] == ["queued"]  # the relay starts it
    assert accepted["workflow_id"] == f"cart-{alpha.id}-shared"
    assert other["workflow_id"] == f"cart-{beta.id}-shared"
    after = await cart(alpha, "shared")
    assert after == before
    assert after["value"] == 50.0 and after["customer_phone"] == "+14155552671"
    theirs = await cart(beta, "shared")
    assert theirs["value"] == 320.0 and theirs["customer_phone"] == "+442079460958"
    assert theirs["workflow"]["stage"] == after["workflow"]["stage"] == "active"


async def test_cadences_are_versioned_per_retailer(
    alpha: RetailerClient, beta: RetailerClient
) -> None:
    await alpha.set_cadence(cadence({"channel": "email", "delay": "1h"}))
    await alpha.set_cadence(cadence({"channel": "email", "delay": "2h"}))
    await beta.set_cadence(cadence({"channel": "sms", "delay": "3h"}))

    mine, theirs = (await alpha.get("/v1/cadence")).json(), (await beta.get("/v1/cadence")).json()
    assert (mine["version"], mine["steps"][0]["delay"]) == (2, "2h")
    assert (theirs["version"], theirs["steps"][0]["channel"]) == (1, "sms")
    assert [v["version"] for v in (await alpha.get("/v1/cadence/versions")).json()] == [1, 2]
    beta_versions = (await beta.get("/v1/cadence/versions")).json()
    assert [(v["version"], v["steps"][0]["channel"]) for v in beta_versions] == [(1, "sms")]
    assert (await beta.get("/v1/cadence/versions/2")).status_code == 404


async def test_templates_and_discount_pools_are_per_retailer(
    alpha: RetailerClient, beta: RetailerClient
) -> None:
    promo = {"channel": "sms", "body": "Alpha only: {{ cart_url }}"}
    assert (await alpha.put("/v1/templates/promo", promo)).status_code == 200
    reminder = {"channel": "email", "subject": "Alpha", "body": "Alpha: {{ cart_url }}"}
    assert (await alpha.put("/v1/templates/cart_reminder", reminder)).status_code == 200
    upload = await alpha.post("/v1/discount-pools/spring/codes", {"codes": ["A1", "A2", "A3"]})
    assert upload.status_code == 201

    theirs = {t["name"]: t for t in (await beta.get("/v1/templates")).json()}
    assert "promo" not in theirs
    assert theirs["cart_reminder"]["is_default"] is True
    assert "Alpha" not in theirs["cart_reminder"]["body"]
    mine = {t["name"]: t for t in (await alpha.get("/v1/templates")).json()}
    assert mine["cart_reminder"]["is_default"] is False and "promo" in mine

    pool = (await beta.get("/v1/discount-pools/spring")).json()
    assert (pool["total"], pool["available"]) == (0, 0)
    added = (await beta.post("/v1/discount-pools/spring/codes", {"codes": ["A1"]})).json()
    assert (added["added"], added["total"]) == (1, 1)
    assert (await alpha.get("/v1/discount-pools/spring")).json()["total"] == 3


async def test_reports_count_only_own_carts(alpha: RetailerClient, beta: RetailerClient) -> None:
    for cart_id in ("c1", "c2"):
        await alpha.event(
            cart_id, "item_added", items=items(40.0), customer=SHOPPER, consent=ALL_CONSENT
        )
    await beta.event("c1", "item_added", items=items(10.0), customer=SHOPPER, consent=ALL_CONSENT)

    assert (await report(alpha))["carts_started"] == 2
    assert (await report(beta))["carts_started"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/retailer",
        "/v1/cadence",
        "/v1/cadence/versions",
        "/v1/templates",
        "/v1/discount-pools/spring",
        "/v1/carts/c1",
        "/v1/carts/c1/nudges",
        "/v1/outbox",
        "/v1/reports/cart-recovery",
    ],
)
async def test_every_retailer_route_needs_a_known_api_key(
    stack: Stack, alpha: RetailerClient, path: str
) -> None:
    missing = await stack.api.get(path)
    assert missing.status_code == 401
    assert missing.json()["detail"] == "missing X-API-Key header"
    unknown = await stack.api.get(path, headers={"X-API-Key": alpha.api_key + "x"})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown API key"


async def test_events_and_changes_need_an_api_key(stack: Stack, alpha: RetailerClient) -> None:
    event = {"event_id": "e1", "type": "item_added", "items": items(10.0)}
    assert (await stack.api.post("/v1/carts/c1/events", json=event)).status_code == 401
    bad_key = {"X-API-Key": "wb_nobody_123"}
    put = await stack.api.put("/v1/cadence", json=cadence({"channel": "email"}), headers=bad_key)
    assert put.status_code == 401

    assert (await alpha.get("/v1/carts/c1")).status_code == 404
    assert (await alpha.get("/v1/cadence")).json()["version"] == 0


async def test_creating_a_retailer_needs_the_admin_token(
    stack: Stack, alpha: RetailerClient
) -> None:
    body = {"id": "newshop", "name": "New Shop"}
    for headers in ({}, {"X-Admin-Token": "wrong"}, {"X-Admin-Token": alpha.api_key}):
        response = await stack.api.post("/v1/retailers", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["detail"] == "missing or wrong X-Admin-Token"

    created = await stack.api.post(
        "/v1/retailers", json=body, headers={"X-Admin-Token": ADMIN_TOKEN}
    )
    assert created.status_code == 201, "a refused attempt must not have taken the id"
