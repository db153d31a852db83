"""Reading and writing a retailer's cadence versions."""

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.cadence import CadenceIn, CadencePublic, default_cadence
from winback.models import CadenceVersion

DEFAULT_VERSION = 0


async def current_cadence(session: AsyncSession, *, retailer_id: str) -> CadencePublic:
    """The newest stored version, or the built-in default as version 0."""
    row = (
        await session.exec(
            select(CadenceVersion)
            .where(CadenceVersion.retailer_id == retailer_id)
            .order_by(col(CadenceVersion.version).desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return CadencePublic(version=DEFAULT_VERSION, **default_cadence().model_dump())
    return CadencePublic(version=row.version, **row.spec)


async def cadence_version(
    session: AsyncSession, *, retailer_id: str, version: int
) -> CadencePublic | None:
    if version == DEFAULT_VERSION:
        return CadencePublic(version=DEFAULT_VERSION, **default_cadence().model_dump())
    row = (
        await session.exec(
            select(CadenceVersion).where(
                CadenceVersion.retailer_id == retailer_id, CadenceVersion.version == version
            )
        )
    ).first()
    return None if row is None else CadencePublic(version=row.version, **row.spec)


async def list_versions(session: AsyncSession, *, retailer_id: str) -> list[CadencePublic]:
    rows = await session.exec(
        select(CadenceVersion)
        .where(CadenceVersion.retailer_id == retailer_id)
        .order_by(col(CadenceVersion.version))
    )
    return [CadencePublic(version=row.version, **row.spec) for row in rows]


async def save_cadence(
    session: AsyncSession, *, retailer_id: str, cadence: CadenceIn
) -> CadencePublic:
    """Stores a new version; carts already running keep the one they started with."""
    latest = (
        await session.exec(
            select(func.max(CadenceVersion.version)).where(
                CadenceVersion.retailer_id == retailer_id
            )
        )
    ).one()
    row = CadenceVersion(
        retailer_id=retailer_id,
        version=(latest or 0) + 1,
        spec=cadence.model_dump(mode="json"),
    )
    session.add(row)
    await session.flush()
    return CadencePublic(version=row.version, **cadence.model_dump())
