"""Unit-scoped API keys: a business unit's owner reads only their unit's figures.

A retailer's own key (made with the retailer) opens everything; the keys made here name one
business unit and open only the feedback report and the dashboards, scoped to that unit. The
plain key is returned once; only its hash is stored, as for the retailer's key.
"""

import hashlib
import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.retailers.models import ApiKey


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_unit_key(
    session: AsyncSession, *, retailer_id: str, business_unit: str, name: str | None
) -> tuple[ApiKey, str]:
    """A new key for ``business_unit`` and its plain value (to show once)."""
    plain = f"wb_{retailer_id}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        retailer_id=retailer_id,
        key_hash=hash_api_key(plain),
        business_unit=business_unit,
        name=name,
    )
    session.add(row)
    await session.flush()
    return row, plain


async def list_unit_keys(session: AsyncSession, *, retailer_id: str) -> list[ApiKey]:
    rows = await session.exec(
        select(ApiKey)
        .where(ApiKey.retailer_id == retailer_id, col(ApiKey.business_unit).is_not(None))
        .order_by(col(ApiKey.id))
    )
    return list(rows.all())


async def delete_unit_key(session: AsyncSession, *, retailer_id: str, key_id: int) -> bool:
    """Revokes one unit key at once (its dashboard sessions end with it); False if unknown."""
    row = await session.get(ApiKey, key_id)
    if row is None or row.retailer_id != retailer_id or row.business_unit is None:
        return False
    await session.delete(row)
    await session.flush()
    return True
