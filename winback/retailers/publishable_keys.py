"""Publishable keys: what a retailer puts in its pages for ``winback.js``.

A publishable key is public by design (anyone can read it in the page source), so it is stored as
it is and grants little: the client endpoints (``/v1/client/...``) for the key's own retailer,
from the key's allowed origins only, rate limited. It never reads personal data, other carts,
reports or configuration. Rotation issues a new key and keeps the old one working for a grace
period, so pages cached with it keep working until they are redeployed.
"""

import secrets
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.platform.clock import utcnow
from winback.platform.columns import json_column, utc_column

KEY_PREFIX = "pk_"
MAX_ORIGINS = 20
DEFAULT_ROTATION_GRACE = timedelta(hours=24)


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` exactly as browsers send it in ``Origin`` (no path, no slash)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin like 'https://shop.example.com'")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} is not an origin: no path, query or credentials")
    host = parts.hostname.lower()
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


class PublishableKey(SQLModel, table=True):
    __tablename__ = "publishable_key"

    id: int | None = SQLField(default=None, primary_key=True)
    retailer_id: str = SQLField(foreign_key="retailer.id", index=True, max_length=40)
    key: str = SQLField(unique=True, max_length=100)
    name: str | None = SQLField(default=None, max_length=200)
    allowed_origins: list[str] = json_column(list)
    created_at: datetime = utc_column(nullable=False, default_now=True)
    expires_at: datetime | None = utc_column()

    def is_valid(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def allows(self, origin: str) -> bool:
        try:
            return normalize_origin(origin) in self.allowed_origins
        except ValueError:
            return False


Origin = Annotated[str, Field(max_length=300)]


class PublishableKeyIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    allowed_origins: list[Origin] = Field(
        min_length=1,
        max_length=MAX_ORIGINS,
        description="Origins whose pages may use the key, e.g. `https://shop.example.com`.",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return sorted({normalize_origin(v) for v in values})


class PublishableKeyUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    allowed_origins: list[Origin] | None = Field(default=None, min_length=1, max_length=MAX_ORIGINS)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted({normalize_origin(v) for v in values})


class PublishableKeyPublic(BaseModel):
    id: int
    key: str = Field(description="Safe to put in a page: `data-key` of the script tag.")
    name: str | None
    allowed_origins: list[str]
    created_at: datetime
    expires_at: datetime | None = Field(description="Set once rotated: the end of its grace.")


def public_view(row: PublishableKey) -> PublishableKeyPublic:
    assert row.id is not None
    return PublishableKeyPublic.model_validate(row, from_attributes=True)


def new_key(retailer_id: str) -> str:
    return f"{KEY_PREFIX}{retailer_id}_{secrets.token_urlsafe(18)}"


async def create_key(
    session: AsyncSession, *, retailer_id: str, allowed_origins: list[str], name: str | None = None
) -> PublishableKey:
    row = PublishableKey(
        retailer_id=retailer_id,
        key=new_key(retailer_id),
        name=name,
        allowed_origins=list(allowed_origins),
    )
    session.add(row)
    await session.flush()
    return row


async def list_keys(session: AsyncSession, *, retailer_id: str) -> list[PublishableKey]:
    """The retailer's keys still valid (a rotated key shows until its grace ends)."""
    now = utcnow()
    rows = await session.exec(
        select(PublishableKey)
        .where(PublishableKey.retailer_id == retailer_id)
        .order_by(col(PublishableKey.id))
    )
    return [r for r in rows if r.is_valid(now)]


async def get_key(session: AsyncSession, *, retailer_id: str, key_id: int) -> PublishableKey | None:
    row = await session.get(PublishableKey, key_id)
    if row is None or row.retailer_id != retailer_id or not row.is_valid(utcnow()):
        return None
    return row


async def rotate_key(
    session: AsyncSession, *, old: PublishableKey, grace: timedelta = DEFAULT_ROTATION_GRACE
) -> PublishableKey:
    """A new key with the same origins; the old one stops working after ``grace``."""
    fresh = await create_key(
        session, retailer_id=old.retailer_id, allowed_origins=old.allowed_origins, name=old.name
    )
    old.expires_at = utcnow() + grace
    session.add(old)
    await session.flush()
    return fresh


async def find_valid_key(session: AsyncSession, key: str) -> PublishableKey | None:
    row = (await session.exec(select(PublishableKey).where(PublishableKey.key == key))).first()
    return row if row is not None and row.is_valid(utcnow()) else None
