"""Retailers (the tenants) and their API keys."""

import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AnyHttpUrl, field_validator
from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column

RETAILER_ID_PATTERN = r"^[a-z0-9][a-z0-9_]{1,39}$"


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like 'Europe/Madrid')"
        ) from None
    return value


def check_country(value: str) -> str:
    """An ISO 3166 alpha-2 code that phone numbers are known for, upper-cased."""
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown country {value!r} (use an ISO 3166 alpha-2 code like 'US')")
    return code


class RetailerBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64, description="The store's IANA time zone.")
    country: str = Field(
        default="US",
        max_length=2,
        description="ISO 3166 alpha-2: the region of phone numbers typed without a `+`.",
    )
    cart_url_template: str = Field(
        default="https://shop.example.com/cart/{cart_id}",
        max_length=2000,
        description="Link back to the cart in messages; `{cart_id}` is replaced.",
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Where on-site nudges are pushed, signed with HMAC-SHA256.",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return check_country(value)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            AnyHttpUrl(value)
        return value


class RetailerCreate(RetailerBase):
    id: str = Field(
        max_length=40,
        description="Short lowercase key used in workflow IDs, e.g. `acme`.",
        schema_extra={"pattern": RETAILER_ID_PATTERN},
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(RETAILER_ID_PATTERN, value):
            raise ValueError("must be 2-40 characters: lowercase letters, digits, underscore")
        return value


class RetailerUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=2)
    cart_url_template: str | None = Field(default=None, max_length=2000)
    webhook_url: str | None = Field(default=None, max_length=2000)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str:
        if value is None:  # only an explicit null gets here: an omitted field is not validated
            raise ValueError("cannot be null")
        return check_country(value)


def new_holdout_salt() -> str:
    return secrets.token_hex(16)


class Retailer(RetailerBase, table=True):
    id: str = Field(primary_key=True, max_length=40)
    webhook_secret: str = Field(max_length=100)
    # Keys the holdout hash (winback.carts.holdout): secret, so nobody outside can tell which
    # shoppers are held out, and per retailer, so the groups of two stores are unrelated.
    holdout_salt: str | None = Field(default_factory=new_holdout_salt, max_length=64)
    created_at: datetime = utc_column(nullable=False, default_now=True)


class RetailerPublic(RetailerBase):
    id: str
    created_at: datetime


class RetailerCreated(RetailerPublic):
    api_key: str = Field(description="Shown once. Send it as the `X-API-Key` header.")
    webhook_secret: str = Field(description="Verifies the `X-Winback-Signature` of webhooks.")


class ApiKey(SQLModel, table=True):
    """Only a hash of each key is kept. A key with a ``business_unit`` belongs to that unit's
    owner: it reads only that unit's feedback figures (the report and the dashboard) and opens
    nothing else, so a store manager can be handed one without the retailer's whole account."""

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    key_hash: str = Field(unique=True, max_length=64)
    business_unit: str | None = Field(default=None, max_length=60)
    name: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_column(nullable=False, default_now=True)


class UnitKeyCreate(SQLModel):
    business_unit: str = Field(
        min_length=1, max_length=60, description="One of the alert rules' `business_units`."
    )
    name: str | None = Field(
        default=None, max_length=200, description="Whose key it is, e.g. `Olga, Madrid store`."
    )


class UnitKeyPublic(SQLModel):
    id: int
    business_unit: str
    name: str | None
    created_at: datetime


class UnitKeyCreated(UnitKeyPublic):
    api_key: str = Field(description="Shown once. Signs in to `/dashboard`, or `X-API-Key`.")
