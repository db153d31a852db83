"""Versioned per-retailer configuration (cadences, alert rules): every save is a new version.

A workflow keeps the version it started with; editing affects what starts next.
"""

from typing import Any, Protocol

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession


class VersionRow(Protocol):
    retailer_id: str
    version: int
    spec: dict[str, Any]

    def __init__(self, *, retailer_id: str, version: int, spec: dict[str, Any]) -> None: ...


async def latest(session: AsyncSession, table: type[Any], retailer_id: str) -> Any | None:
    query = (
        select(table)
        .where(table.retailer_id == retailer_id)
        .order_by(col(table.version).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def by_version(
    session: AsyncSession, table: type[Any], retailer_id: str, version: int
) -> Any | None:
    query = select(table).where(table.retailer_id == retailer_id, table.version == version)
    return (await session.exec(query)).first()


async def all_versions(session: AsyncSession, table: type[Any], retailer_id: str) -> list[Any]:
    query = select(table).where(table.retailer_id == retailer_id).order_by(col(table.version))
    return list((await session.exec(query)).all())


async def save(
    session: AsyncSession, table: type[Any], retailer_id: str, spec: dict[str, Any]
) -> int:
    """Stores ``spec`` as the next version and returns its number."""
    newest = (
        await session.exec(select(func.max(table.version)).where(table.retailer_id == retailer_id))
    ).one()
    row = table(retailer_id=retailer_id, version=(newest or 0) + 1, spec=spec)
    session.add(row)
    await session.flush()
    return int(row.version)
