"""Shopify and WooCommerce as the tests see them: their published sample payloads, signed the
way each platform signs (base64 HMAC-SHA256 of the exact body), posted to Winback."""

import base64
import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RetailerClient
from winback.platform.clock import utcnow

FIXTURES = Path(__file__).parent.parent / "integrations" / "fixtures"
SHOP = "acme-test.myshopify.com"
SHOPIFY_SECRET = "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"
WOO_SECRET = "woo-secret-0123456789abcdef"


def sample(name: str) -> dict[str, Any]:
    """A published sample payload (see ``tests/integrations/fixtures/README.md``)."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def checkout(**changes: Any) -> dict[str, Any]:
    """Shopify's checkouts/create sample as it arrives today (its 2021 dates made current),
    with ``changes`` applied."""
    payload = sample("shopify_checkouts_create.json")
    now = utcnow().isoformat()
    payload["created_at"] = payload["updated_at"] = now
    payload.update(changes)
    return payload


async def connect_shopify(retailer: RetailerClient, **extra: Any) -> dict[str, Any]:
    response = await retailer.put(
        "/v1/integrations/shopify",
        {"shop_domain": SHOP, "webhook_secret": SHOPIFY_SECRET, **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def shopify_delivery(
    retailer: RetailerClient,
    topic: str,
    payload: dict[str, Any],
    *,
    webhook_id: str | None = None,
    secret: str = SHOPIFY_SECRET,
    shop: str = SHOP,
    api: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """One delivery as Shopify makes it: JSON body, signature of those bytes, its headers."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": utcnow().isoformat(),
    }
    client = api or retailer.stack.api
    return await client.post(f"/v1/webhooks/shopify/{retailer.id}", content=body, headers=headers)


async def connect_woocommerce(retailer: RetailerClient, **extra: Any) -> dict[str, Any]:
    response = await retailer.put(
        "/v1/integrations/woocommerce",
        {"store_url": "https://shop.acme.example", "webhook_secret": WOO_SECRET, **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def woo_order(**changes: Any) -> dict[str, Any]:
    """WooCommerce's order sample as a webhook would carry it today."""
    payload = sample("woocommerce_order_created.json")
    now = utcnow().replace(microsecond=0, tzinfo=None).isoformat()
    for field in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt"):
        payload[field] = now
    payload["date_paid"] = payload["date_paid_gmt"] = now
    payload.update(changes)
    return payload


async def woo_delivery(
    retailer: RetailerClient,
    topic: str,
    payload: dict[str, Any],
    *,
    secret: str = WOO_SECRET,
    delivery_id: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    resource, _, event = topic.partition(".")
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.acme.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": "31",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    return await retailer.stack.api.post(
        f"/v1/webhooks/woocommerce/{retailer.id}", content=body, headers=headers
    )
