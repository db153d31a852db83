"""WooCommerce connected with a URL and a secret: the storefront snippet tracks the cart (the
events API), and WooCommerce's paid order ends it as bought. The order is WooCommerce's
published REST example (a webhook carries the same JSON), signed here like WooCommerce signs."""

from typing import Any

import pytest
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart
from tests.support.helpers import ALL_CONSENT, items
from tests.support.platforms import WOO_SECRET, connect_woocommerce, woo_delivery, woo_order
from winback.integrations.deliveries import WebhookDelivery

pytestmark = pytest.mark.both_databases

SHOPPER = {"email": "john.doe@example.com", "name": "John Doe", "phone": "(555) 555-5555"}


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer()
    await connect_woocommerce(retailer)
    return retailer


async def snippet_cart(retailer: RetailerClient, cart_id: str = "wc-1") -> None:
    """What winback.js posts from the WooCommerce storefront."""
    await retailer.event(
        cart_id,
        "item_added",
        items=items(6.0, 12.0),
        customer={"email": SHOPPER["email"], "name": SHOPPER["name"]},
        consent=ALL_CONSENT,
    )


def with_cart_id(cart_id: str, **changes: Any) -> dict[str, Any]:
    order = woo_order(**changes)
    order["meta_data"].append({"id": 13107, "key": "_winback_cart_id", "value": cart_id})
    return order


async def test_a_generated_secret_is_shown_once(stack: Stack) -> None:
    retailer = await stack.retailer()
    response = await retailer.put(
        "/v1/integrations/woocommerce", {"store_url": "https://shop.acme.example/"}
    )

    assert response.status_code == 200, response.text
    shown = response.json()
    assert len(shown["webhook_secret"]) >= 32
    assert shown["webhook_url"].endswith(f"/v1/webhooks/woocommerce/{retailer.id}")
    assert shown["topics"] == ["order.created", "order.updated"]
    assert (await retailer.get("/v1/integrations/woocommerce")).json()["webhook_secret"] is None


async def test_the_ping_woocommerce_sends_on_saving_a_webhook_is_answered(
    stack: Stack, retailer: RetailerClient
) -> None:
    response = await stack.api.post(
        f"/v1/webhooks/woocommerce/{retailer.id}",
        content=b"webhook_id=31",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "ping"
    async with stack.sessions() as session:
        assert (await session.exec(select(WebhookDelivery))).all() == []


async def test_a_paid_order_naming_its_cart_ends_the_journey_as_bought(
    retailer: RetailerClient,
) -> None:
    await snippet_cart(retailer)

    response = await woo_delivery(retailer, "order.created", with_cart_id("wc-1"))

    assert response.status_code == 200, response.text
    assert (response.json()["cart_id"], response.json()["workflow_actions"]) == (
        "wc-1",
        ["order_placed"],
    )
    assert (await retailer.result("wc-1")).stage == "purchased"
    stored = await cart(retailer, "wc-1")
    assert (stored["order_id"], stored["order_value"]) == ("727", 29.35)


async def test_an_order_without_the_cart_id_finds_the_shoppers_open_cart_by_email(
    retailer: RetailerClient,
) -> None:
    await snippet_cart(retailer)

    response = await woo_delivery(retailer, "order.created", woo_order())

    assert response.json()["cart_id"] == "wc-1"
    assert (await retailer.result("wc-1")).stage == "purchased"


async def test_an_unpaid_order_waits_for_the_update_that_says_it_is_paid(
    retailer: RetailerClient,
) -> None:
    await snippet_cart(retailer)
    pending = with_cart_id("wc-1", status="pending", date_paid=None, date_paid_gmt=None)

    created = await woo_delivery(retailer, "order.created", pending)
    assert created.json()["outcome"] == "ignored"
    assert (await cart(retailer, "wc-1"))["status"] == "active"

    paid = await woo_delivery(retailer, "order.updated", with_cart_id("wc-1", status="completed"))
    paid_again = await woo_delivery(retailer, "order.updated", with_cart_id("wc-1"))

    assert paid.json()["workflow_actions"] == ["order_placed"]
    assert paid_again.json()["workflow_actions"] == []  # one order, counted once
    assert (await retailer.result("wc-1")).stage == "purchased"


async def test_an_order_of_no_known_cart_is_answered_and_changes_nothing(
    retailer: RetailerClient,
) -> None:
    response = await woo_delivery(retailer, "order.created", with_cart_id("never-seen"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


@pytest.mark.parametrize("secret", ["wrong-secret-123", ""])
async def test_a_forged_order_is_refused(retailer: RetailerClient, secret: str) -> None:
    await snippet_cart(retailer)

    response = await woo_delivery(retailer, "order.created", with_cart_id("wc-1"), secret=secret)

    assert response.status_code == 401, response.text
    assert (await cart(retailer, "wc-1"))["status"] == "active"
    assert WOO_SECRET not in response.text
