"""Connecting a store platform: the shop and its webhook secret in, the URL to paste out."""

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from api.deps import RetailerDep, SessionDep, SettingsDep
from winback.integrations import shopify, woocommerce
from winback.integrations.connections import (
    ConnectionPublic,
    PlatformConnection,
    ShopifyConnectionIn,
    WooCommerceConnectionIn,
)
from winback.platform.clock import utcnow
from winback.platform.crypto import encrypt
from winback.platform.db import retry_on_conflict
from winback.platform.settings import Settings

PlatformName = Annotated[str, Path(max_length=40, description="`shopify` or `woocommerce`.")]
router = APIRouter(prefix="/v1/integrations", tags=["integrations"])

SHOPIFY_TOPICS = list(shopify.TOPICS)
WOOCOMMERCE_TOPICS = list(woocommerce.TOPICS)


def webhook_url(settings: Settings, platform: str, retailer_id: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/v1/webhooks/{platform}/{retailer_id}"


def _public(
    settings: Settings, row: PlatformConnection, secret_shown: str | None = None
) -> ConnectionPublic:
    return ConnectionPublic(
        platform=row.platform,
        shop=row.shop,
        country=row.country,
        webhook_url=webhook_url(settings, row.platform, row.retailer_id),
        topics=SHOPIFY_TOPICS if row.platform == shopify.SHOPIFY else WOOCOMMERCE_TOPICS,
        webhook_secret=secret_shown,
        updated_at=row.updated_at,
    )


async def _row(session: SessionDep, retailer_id: str, platform: str) -> PlatformConnection | None:
    return await session.get(PlatformConnection, (retailer_id, platform))


@router.put("/shopify", response_model=ConnectionPublic)
async def put_shopify(
    body: ShopifyConnectionIn, retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> ConnectionPublic:
    """Connects the retailer's Shopify store: its `<name>.myshopify.com` domain and the secret
    Shopify signs webhooks with (stored encrypted, never shown again). Returns the webhook URL
    to create in Shopify for each topic listed."""

    async def upsert() -> PlatformConnection:
        row = await _row(session, retailer.id, shopify.SHOPIFY) or PlatformConnection(
            retailer_id=retailer.id, platform=shopify.SHOPIFY, webhook_secret_enc=""
        )
        row.shop, row.country = body.shop_domain, body.country
        row.webhook_secret_enc = encrypt(settings, body.webhook_secret)
        row.updated_at = utcnow()
        session.add(row)
        return row

    # Two first PUTs at once: the loser of the insert replaces the winner's row, no 409.
    return _public(settings, await retry_on_conflict(session, upsert, keep=[retailer]))


@router.put("/woocommerce", response_model=ConnectionPublic)
async def put_woocommerce(
    body: WooCommerceConnectionIn, retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> ConnectionPublic:
    """Connects the retailer's WooCommerce store. Give the secret you typed into WooCommerce's
    webhook form, or leave it out to get a new one (shown once in this answer)."""
    made = None if body.webhook_secret else secrets.token_urlsafe(32)

    async def upsert() -> PlatformConnection:
        row = await _row(session, retailer.id, woocommerce.WOOCOMMERCE) or PlatformConnection(
            retailer_id=retailer.id, platform=woocommerce.WOOCOMMERCE, webhook_secret_enc=""
        )
        row.shop, row.country = body.store_url, body.country
        row.webhook_secret_enc = encrypt(settings, body.webhook_secret or made or "")
        row.updated_at = utcnow()
        session.add(row)
        return row

    return _public(settings, await retry_on_conflict(session, upsert, keep=[retailer]), made)


@router.get("/{platform}", response_model=ConnectionPublic)
async def get_connection(
    platform: PlatformName, retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> ConnectionPublic:
    """The connection (`shopify` or `woocommerce`) without its secret, and what to paste where."""
    row = await _row(session, retailer.id, platform)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {platform} store connected")
    return _public(settings, row)


@router.delete("/{platform}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_connection(
    platform: PlatformName, retailer: RetailerDep, session: SessionDep
) -> Response:
    """Disconnects the store: its webhooks are refused from now on (401)."""
    row = await _row(session, retailer.id, platform)
    if row is not None:
        await session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
