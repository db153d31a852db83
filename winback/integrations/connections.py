"""A retailer's connection to its store platform: which shop, and the secret that signs the
platform's webhooks. The secret is stored Fernet-encrypted (like provider keys) and never
returned; the public view says where to point the platform's webhooks instead."""

import re
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, field_validator
from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column
from winback.retailers.models import check_country

Platform = Literal["shopify", "woocommerce"]
PLATFORMS: tuple[Platform, ...] = ("shopify", "woocommerce")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9\-]*\.myshopify\.com$")


class PlatformConnection(SQLModel, table=True):
    __tablename__ = "platform_connection"

    retailer_id: str = Field(foreign_key="retailer.id", primary_key=True, max_length=40)
    platform: str = Field(primary_key=True, max_length=20)
    shop: str | None = Field(
        default=None,
        max_length=300,
        description="Shopify: the myshopify.com domain; WooCommerce: the store's URL.",
    )
    country: str | None = Field(
        default=None, max_length=2, description="Where national phone numbers are read."
    )
    webhook_secret_enc: str
    updated_at: datetime = utc_column(nullable=False, default_now=True)


class ShopifyConnectionIn(SQLModel):
    """What ``PUT /v1/integrations/shopify`` takes."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    shop_domain: str = Field(
        max_length=300, description="The store's `<name>.myshopify.com` domain."
    )
    webhook_secret: str = Field(
        min_length=8,
        max_length=500,
        description="What Shopify signs the webhooks with: the key shown under Settings > "
        "Notifications > Webhooks, or the app's client secret for an app's webhooks.",
    )
    country: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="ISO 3166 alpha-2; default: the retailer's country.",
    )

    @field_validator("shop_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower().removeprefix("https://").rstrip("/")
        if not SHOP_DOMAIN.fullmatch(domain):
            raise ValueError(f"{value!r} is not a shop domain like 'acme.myshopify.com'")
        return domain

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value)


class WooCommerceConnectionIn(SQLModel):
    """What ``PUT /v1/integrations/woocommerce`` takes."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    store_url: str = Field(max_length=300, description="The shop's URL, `https://…`.")
    webhook_secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=500,
        description="The secret typed into WooCommerce's webhook form. Leave it out and "
        "Winback makes one and shows it once.",
    )
    country: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="ISO 3166 alpha-2; default: the retailer's country.",
    )

    @field_validator("store_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not the store's URL (https://…)")
        return value.rstrip("/")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value)


class ConnectionPublic(SQLModel):
    """A connection as the API shows it: never the secret, but what to paste where."""

    platform: str
    shop: str | None
    country: str | None
    webhook_url: str = Field(description="Paste this into the platform's webhook settings.")
    topics: list[str] = Field(description="The webhook topics (events) to subscribe it to.")
    webhook_secret: str | None = Field(
        default=None, description="Only when Winback made the secret: shown this once."
    )
    updated_at: datetime
