"""Shopify connected with a URL and a secret: its checkout and order webhooks drive cart
recovery, verified, deduplicated, stored before anything else, and its privacy webhooks are
honoured. Payloads are Shopify's published samples (tests/integrations/fixtures/README.md),
signed here with the connection's secret."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client

from tests.conftest import RetailerClient, Stack
from tests.conftest import test_settings as settings_for
from tests.support.api import cart, signals
from tests.support.helpers import cadence
from tests.support.platforms import (
    SHOP,
    SHOPIFY_SECRET,
    checkout,
    connect_shopify,
    sample,
    shopify_delivery,
    sign,
)
from winback.carts.models import CartEvent
from winback.carts.redrive import redrive_pending_carts
from winback.composition.stack import build_app
from winback.customers.models import Customer
from winback.integrations.connections import PlatformConnection
from winback.integrations.deliveries import WebhookDelivery
from winback.messaging.models import Suppression
from winback.platform.clock import utcnow
from winback.platform.crypto import address_digest, decrypt

pytestmark = pytest.mark.both_databases

CART = "shopify-123123123"  # the cart id of the sample's checkout token "123123123"
RECOVERY_URL = (
    "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
)


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer(country="US")
    await connect_shopify(retailer)
    return retailer


def completed_order(**changes: Any) -> dict[str, Any]:
    """Shopify's orders/create sample as a real new order of the sample checkout: linked by its
    token, not cancelled (the sample is a cancelled test order with no checkout)."""
    order = sample("shopify_orders_create.json")
    order.update(
        {
            "checkout_token": "123123123",
            "cancelled_at": None,
            "cancel_reason": None,
            "financial_status": "paid",
            "created_at": utcnow().isoformat(),
            "processed_at": utcnow().isoformat(),
            **changes,
        }
    )
    return order


async def test_connecting_shows_what_to_paste_and_keeps_the_secret_encrypted(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    shown = await connect_shopify(retailer, shop_domain="https://Acme-Test.myshopify.com/")

    assert shown["shop"] == SHOP
    assert shown["webhook_url"] == f"http://localhost:8000/v1/webhooks/shopify/{retailer.id}"
    assert shown["topics"] == [
        "checkouts/create",
        "checkouts/update",
        "orders/create",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    ]
    assert SHOPIFY_SECRET not in (await retailer.get("/v1/integrations/shopify")).text
    async with stack.sessions() as session:
        row = await session.get(PlatformConnection, (retailer.id, "shopify"))
    assert row is not None and SHOPIFY_SECRET not in row.webhook_secret_enc
    assert decrypt(settings_for("", ""), row.webhook_secret_enc) == SHOPIFY_SECRET

    bad = await retailer.put(
        "/v1/integrations/shopify", {"shop_domain": "acme.com", "webhook_secret": "x" * 10}
    )
    assert bad.status_code == 422 and "shop_domain" in bad.json()["detail"]


async def test_a_checkout_becomes_a_cart_whose_messages_link_back_to_it(
    retailer: RetailerClient,
) -> None:
    await retailer.set_cadence(cadence({"channel": "email", "delay": "1h"}))
    response = await shopify_delivery(
        retailer, "checkouts/create", checkout(buyer_accepts_marketing=True)
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "duplicate": False,
        "outcome": "applied",
        "cart_id": CART,
        "workflow_actions": ["started"],
        "detail": None,
    }
    stored = await cart(retailer, CART)
    assert [(i["sku"], i["name"], i["price"], i["product_id"]) for i in stored["items"]] == [
        ("IPOD2008PINK", "IPod Nano - 8GB - Pink", 199.0, "632910392")
    ] * 2
    assert (stored["value"], stored["currency"]) == (398.0, "USD")
    assert stored["customer_email"] == "example@email.com"
    async with retailer.stack.sessions() as session:
        shopper = (await session.exec(select(Customer))).one()
    assert (shopper.external_id, shopper.name) == ("603851970716743426", "John Smith")
    assert (shopper.consent_email, shopper.consent_sms) == (True, False)

    result = await retailer.result(CART)  # Shopify never says "abandoned": inactivity does

    assert result.stage == "completed"
    [email] = await retailer.outbox()
    assert email["to_address"] == "example@email.com"
    assert RECOVERY_URL in email["body"]


async def test_several_variants_of_one_product_read_as_a_confused_shopper(
    retailer: RetailerClient,
) -> None:
    payload = checkout()
    payload["line_items"][1].update(
        {"sku": "IPOD2008BLACK", "variant_id": 457924702, "variant_title": "Black"}
    )

    response = await shopify_delivery(retailer, "checkouts/create", payload)

    assert response.json()["workflow_actions"] == ["started", "nudge_trigger"]


async def test_national_phone_numbers_are_read_in_the_shops_country(stack: Stack) -> None:
    retailer = await stack.retailer(country="US")
    await connect_shopify(retailer, country="ES")
    await shopify_delivery(
        retailer,
        "checkouts/create",
        checkout(phone="612 34 56 78", buyer_accepts_sms_marketing=True),
    )

    async with stack.sessions() as session:
        shopper = (await session.exec(select(Customer))).one()
    assert (shopper.phone, shopper.consent_sms) == ("+34612345678", True)


async def test_a_completed_checkout_ends_the_journey_as_bought_and_is_attributed(
    stack: Stack, retailer: RetailerClient
) -> None:
    last = {"channel": "email", "delay": "1d", "template": "cart_last_chance"}
    await retailer.set_cadence(cadence({"channel": "email", "delay": "1h"}, last))
    await shopify_delivery(retailer, "checkouts/create", checkout(buyer_accepts_marketing=True))
    await stack.env.sleep(3 * 3600)  # abandoned, emailed an hour later, the last email to come

    done = checkout(buyer_accepts_marketing=True, completed_at=utcnow().isoformat())
    response = await shopify_delivery(retailer, "checkouts/update", done)

    assert response.json()["workflow_actions"] == ["order_placed"]
    assert (await retailer.result(CART)).stage == "recovered"  # credited to the email
    stored = await cart(retailer, CART)
    assert (stored["status"], stored["order_value"]) == ("ordered", 421.88)


@pytest.mark.parametrize(
    ("checkout_changes", "order_link"),
    [
        ({}, {"checkout_token": "123123123"}),
        ({"id": 981820079255243537}, {"checkout_token": None, "checkout_id": 981820079255243537}),
        ({}, {"checkout_token": None, "cart_token": "eeafa272cebfd4b22385bc4b645e762c"}),
    ],
    ids=["checkout_token", "checkout_id", "cart_token"],
)
async def test_an_order_finds_its_checkouts_cart(
    retailer: RetailerClient, checkout_changes: dict[str, Any], order_link: dict[str, Any]
) -> None:
    await shopify_delivery(retailer, "checkouts/create", checkout(**checkout_changes))

    response = await shopify_delivery(retailer, "orders/create", completed_order(**order_link))

    assert response.json()["cart_id"] == CART
    assert response.json()["workflow_actions"] == ["order_placed"]
    assert (await retailer.result(CART)).stage == "purchased"
    stored = await cart(retailer, CART)
    assert (stored["order_id"], stored["order_value"]) == ("820982911946154508", 404.95)


async def test_the_published_order_sample_is_accepted_and_changes_nothing(
    retailer: RetailerClient,
) -> None:
    """Shopify's sample is a cancelled order of no known checkout: answered, ignored."""
    await shopify_delivery(retailer, "checkouts/create", checkout())

    response = await shopify_delivery(
        retailer, "orders/create", sample("shopify_orders_create.json")
    )

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert (await cart(retailer, CART))["status"] == "active"


async def test_a_redelivered_webhook_is_applied_once(retailer: RetailerClient) -> None:
    first = await shopify_delivery(retailer, "checkouts/create", checkout(), webhook_id="wh-1")
    again = await shopify_delivery(retailer, "checkouts/create", checkout(), webhook_id="wh-1")

    assert first.json()["duplicate"] is False
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["workflow_actions"] == []
    async with retailer.stack.sessions() as session:
        events = (await session.exec(select(CartEvent))).all()
    assert len(events) == 1
    assert await signals(retailer, CART) == []


@pytest.mark.parametrize(
    "forgery",
    ["wrong_secret", "no_signature", "tampered_body", "other_shop", "not_connected"],
)
async def test_an_unverified_delivery_is_refused_and_changes_nothing(
    stack: Stack, retailer: RetailerClient, forgery: str
) -> None:
    body = checkout()
    if forgery == "wrong_secret":
        response = await shopify_delivery(retailer, "checkouts/create", body, secret="guess")
    elif forgery == "other_shop":
        response = await shopify_delivery(
            retailer, "checkouts/create", body, shop="evil.myshopify.com"
        )
    elif forgery == "not_connected":
        await retailer.stack.api.delete("/v1/integrations/shopify", headers=retailer.headers)
        response = await shopify_delivery(retailer, "checkouts/create", body)
    else:
        signed = await _signed_request(retailer, body)
        if forgery == "no_signature":
            del signed.headers["X-Shopify-Hmac-Sha256"]
        else:
            signed = httpx.Request(
                "POST", signed.url, headers=signed.headers, content=signed.content + b" "
            )
        response = await stack.api.send(signed)

    assert response.status_code == 401, response.text
    async with stack.sessions() as session:
        assert (await session.exec(select(CartEvent))).all() == []
        assert (await session.exec(select(WebhookDelivery))).all() == []


async def _signed_request(retailer: RetailerClient, payload: dict[str, Any]) -> httpx.Request:
    body = json.dumps(payload).encode()
    return retailer.stack.api.build_request(
        "POST",
        f"/v1/webhooks/shopify/{retailer.id}",
        content=body,
        headers={
            "X-Shopify-Topic": "checkouts/create",
            "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, body),
            "X-Shopify-Webhook-Id": "wh-forged",
        },
    )


@pytest.fixture
async def api_without_temporal(
    stack: Stack, database_url: str, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The same API and database, with Temporal unreachable (nothing listens on port 1)."""
    dead = await Client.connect("127.0.0.1:1", lazy=True)
    app = build_app(settings_for(database_url, task_queue), temporal=dead)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
    ):
        yield api


async def test_a_temporal_hiccup_after_the_commit_never_fails_the_delivery(
    retailer: RetailerClient, api_without_temporal: httpx.AsyncClient
) -> None:
    down = await shopify_delivery(
        retailer, "checkouts/create", checkout(), webhook_id="wh-1", api=api_without_temporal
    )

    assert down.status_code == 200, down.text
    assert (down.json()["outcome"], down.json()["workflow_actions"]) == ("applied", [])
    assert (await cart(retailer, CART))["workflow_id"] is None  # stored, not yet started

    retried = await shopify_delivery(retailer, "checkouts/create", checkout(), webhook_id="wh-1")
    assert retried.json()["duplicate"] is True
    assert retried.json()["workflow_actions"] == ["started"]  # the flags re-drive it


async def test_a_cart_stored_during_an_outage_is_started_by_the_workers_sweep(
    stack: Stack, retailer: RetailerClient, api_without_temporal: httpx.AsyncClient
) -> None:
    """No later event, no redelivery (Shopify got its 200): the sweep tells the workflow."""
    await shopify_delivery(retailer, "checkouts/create", checkout(), api=api_without_temporal)
    assert (await cart(retailer, CART))["workflow_id"] is None

    done = await redrive_pending_carts(
        stack.sessions, stack.client, task_queue=stack.task_queue, grace=timedelta(0)
    )

    assert done == {f"cart-{retailer.id}-{CART}": ["started"]}
    assert (await cart(retailer, CART))["workflow_id"] == f"cart-{retailer.id}-{CART}"
    again = await redrive_pending_carts(
        stack.sessions, stack.client, task_queue=stack.task_queue, grace=timedelta(0)
    )
    assert again == {}


async def test_customers_redact_erases_the_shopper_and_stops_the_journey(
    stack: Stack, retailer: RetailerClient
) -> None:
    redact = sample("shopify_customers_redact.json")
    buyer = checkout(email="john@example.com", buyer_accepts_marketing=True)
    buyer["customer"]["id"] = redact["customer"]["id"]
    await shopify_delivery(retailer, "checkouts/create", buyer)

    response = await shopify_delivery(retailer, "customers/redact", redact)

    assert response.status_code == 200 and response.json()["outcome"] == "privacy"
    assert (await retailer.result(CART)).stage == "opted_out"
    async with stack.sessions() as session:
        shopper = (await session.exec(select(Customer))).one()
        suppressed = (await session.exec(select(Suppression))).all()
    assert (shopper.email, shopper.name, shopper.external_id) == (None, None, None)
    assert shopper.erased_at is not None
    settings = settings_for("", "")
    # The sample's "555-625-1199" is no real number: only the email can be matched again.
    assert {(s.channel, s.address) for s in suppressed} == {
        ("all", address_digest(settings, "john@example.com"))
    }
    [audit] = (await retailer.get("/v1/privacy-requests")).json()
    assert (audit["kind"], audit["source"], audit["requested_by"]) == (
        "erase",
        "shopify",
        "shopify:customers/redact",
    )
    assert "john@example.com" not in str(audit)


async def test_customers_data_request_waits_for_the_retailer_to_download_it(
    retailer: RetailerClient,
) -> None:
    request = sample("shopify_customers_data_request.json")
    await shopify_delivery(retailer, "checkouts/create", checkout(email="john@example.com"))

    response = await shopify_delivery(retailer, "customers/data_request", request)

    assert response.status_code == 200, response.text
    [pending] = (await retailer.get("/v1/privacy-requests", params={"status": "pending"})).json()
    assert pending["subject"] == "j***@example.com, customer 191167"
    export = await retailer.get(f"/v1/privacy-requests/{pending['id']}/export")
    assert export.status_code == 200, export.text
    [customer] = export.json()["customers"]
    assert customer["customer"]["email"] == "john@example.com"
    assert [c["cart_id"] for c in customer["carts"]] == [CART]
    again = await retailer.get(f"/v1/privacy-requests/{pending['id']}/export")
    assert again.status_code == 409


async def test_shop_redact_erases_the_shops_shoppers_and_forgets_the_shop(
    stack: Stack, retailer: RetailerClient
) -> None:
    await shopify_delivery(retailer, "checkouts/create", checkout())

    response = await shopify_delivery(retailer, "shop/redact", sample("shopify_shop_redact.json"))

    assert response.status_code == 200, response.text
    async with stack.sessions() as session:
        shopper = (await session.exec(select(Customer))).one()
    assert shopper.email is None and shopper.erased_at is not None
    assert (await retailer.get("/v1/integrations/shopify")).status_code == 404
    later = await shopify_delivery(retailer, "checkouts/create", checkout())
    assert later.status_code == 401


async def test_a_signed_payload_winback_cannot_read_is_answered_not_retried_forever(
    stack: Stack, retailer: RetailerClient
) -> None:
    no_token = checkout()
    del no_token["token"]

    response = await shopify_delivery(retailer, "checkouts/create", no_token, webhook_id="wh-9")

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "ignored"
    assert "token" in response.json()["detail"]
    async with stack.sessions() as session:
        [delivery] = (await session.exec(select(WebhookDelivery))).all()
        assert (await session.exec(select(CartEvent))).all() == []
    assert (delivery.delivery_id, delivery.outcome) == ("wh-9", "ignored")
