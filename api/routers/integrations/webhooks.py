"""Webhooks from the store platforms, one URL per retailer and platform.

The signature is checked over the raw body before anything is read (401 otherwise, as Shopify
requires of its compliance webhooks); then the delivery is stored and answered at once, and
the cart's workflow is told after the commit (``winback.integrations.ingest``).
"""

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request, status
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep, SettingsDep, TemporalClientDep
from winback.integrations import shopify, woocommerce
from winback.integrations.connections import PlatformConnection
from winback.integrations.ingest import DeliveryResult, ingest_shopify, ingest_woocommerce
from winback.integrations.signatures import verify_body_signature
from winback.platform.crypto import decrypt
from winback.retailers.models import RETAILER_ID_PATTERN, Retailer

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
RetailerId = Annotated[str, Path(pattern=RETAILER_ID_PATTERN)]
MAX_DELIVERY_ID = 200


class DeliveryAccepted(BaseModel):
    duplicate: bool = False
    outcome: str
    cart_id: str | None = None
    workflow_actions: list[str] = []
    detail: str | None = None


def _unverified(why: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, why)


async def _connection(
    session: SessionDep, retailer_id: str, platform: str
) -> tuple[Retailer, PlatformConnection]:
    connection = await session.get(PlatformConnection, (retailer_id, platform))
    retailer = await session.get(Retailer, retailer_id)
    if connection is None or retailer is None:
        raise _unverified(f"no {platform} store is connected for this retailer")
    return retailer, connection


def _delivery_id(given: str | None, body: bytes) -> str:
    """The platform's id of the delivery, or the body's hash when it sends none."""
    if given and len(given) <= MAX_DELIVERY_ID:
        return given
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not a JSON object")
    return payload


def _accepted(result: DeliveryResult) -> DeliveryAccepted:
    return DeliveryAccepted(
        duplicate=result.duplicate,
        outcome=result.outcome,
        cart_id=result.cart_id,
        workflow_actions=result.workflow_actions,
        detail=result.detail,
    )


@router.post("/shopify/{retailer_id}", response_model=DeliveryAccepted)
async def shopify_webhook(
    retailer_id: RetailerId,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    x_shopify_hmac_sha256: Annotated[str | None, Header(max_length=200)] = None,
    x_shopify_topic: Annotated[str | None, Header(max_length=200)] = None,
    x_shopify_webhook_id: Annotated[str | None, Header(max_length=200)] = None,
    x_shopify_shop_domain: Annotated[str | None, Header(max_length=200)] = None,
) -> DeliveryAccepted:
    """Shopify's `checkouts/create`, `checkouts/update`, `orders/create` and the mandatory
    privacy topics (`customers/data_request`, `customers/redact`, `shop/redact`). Verified
    by `X-Shopify-Hmac-Sha256` (401 otherwise), deduplicated by `X-Shopify-Webhook-Id`,
    stored and answered at once; the cart's workflow is told after."""
    body = await request.body()
    retailer, connection = await _connection(session, retailer_id, shopify.SHOPIFY)
    secret = decrypt(settings, connection.webhook_secret_enc)
    if not verify_body_signature(secret, body, x_shopify_hmac_sha256):
        raise _unverified("missing or wrong X-Shopify-Hmac-Sha256")
    if (
        x_shopify_shop_domain
        and connection.shop
        and x_shopify_shop_domain.lower() != connection.shop
    ):
        raise _unverified(f"this URL is for {connection.shop}, not {x_shopify_shop_domain}")
    if not x_shopify_topic:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "missing X-Shopify-Topic header")
    payload = _json_object(body)
    delivery_id = _delivery_id(x_shopify_webhook_id, body)
    for attempt in range(2):
        try:
            result = await ingest_shopify(
                session,
                client,
                settings=settings,
                retailer=retailer,
                connection=connection,
                topic=x_shopify_topic,
                delivery_id=delivery_id,
                payload=payload,
            )
            return _accepted(result)
        except IntegrityError:
            await session.rollback()  # a concurrent delivery created the cart first
            if attempt:
                raise
    raise AssertionError("unreachable")


@router.post("/woocommerce/{retailer_id}", response_model=DeliveryAccepted)
async def woocommerce_webhook(
    retailer_id: RetailerId,
    request: Request,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    x_wc_webhook_signature: Annotated[str | None, Header(max_length=200)] = None,
    x_wc_webhook_topic: Annotated[str | None, Header(max_length=200)] = None,
    x_wc_webhook_id: Annotated[str | None, Header(max_length=200)] = None,
    x_wc_webhook_delivery_id: Annotated[str | None, Header(max_length=200)] = None,
) -> DeliveryAccepted:
    """WooCommerce's `order.created` and `order.updated`, verified by `X-WC-Webhook-Signature`
    (401 otherwise): a paid order ends its cart as bought. The unsigned form-encoded ping
    WooCommerce sends when the webhook is saved is answered and changes nothing."""
    body = await request.body()
    retailer, connection = await _connection(session, retailer_id, woocommerce.WOOCOMMERCE)
    if woocommerce.is_ping(body):
        return DeliveryAccepted(outcome="ping", detail="WooCommerce webhook reached Winback")
    secret = decrypt(settings, connection.webhook_secret_enc)
    if not verify_body_signature(secret, body, x_wc_webhook_signature):
        raise _unverified("missing or wrong X-WC-Webhook-Signature")
    if not x_wc_webhook_topic:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "missing X-WC-Webhook-Topic header")
    payload = _json_object(body)
    given = f"{x_wc_webhook_id}:{x_wc_webhook_delivery_id}" if x_wc_webhook_delivery_id else None
    delivery_id = _delivery_id(given, body)
    for attempt in range(2):
        try:
            result = await ingest_woocommerce(
                session,
                client,
                settings=settings,
                retailer=retailer,
                topic=x_wc_webhook_topic,
                delivery_id=delivery_id,
                payload=payload,
            )
            return _accepted(result)
        except IntegrityError:
            await session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")
