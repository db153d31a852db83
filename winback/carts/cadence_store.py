"""Reading and writing a retailer's cadence versions (version 0 is the built-in default)."""

from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.cadence import CadenceIn, CadencePublic, default_cadence
from winback.carts.cadence_models import CadenceVersion
from winback.platform import versioned

DEFAULT_VERSION = 0


def _default() -> CadencePublic:
    return CadencePublic(version=DEFAULT_VERSION, **default_cadence().model_dump())


async def current_cadence(session: AsyncSession, *, retailer_id: str) -> CadencePublic:
    """The newest stored version, or the built-in default as version 0."""
    row = await versioned.latest(session, CadenceVersion, retailer_id)
    return _default() if row is None else CadencePublic(version=row.version, **row.spec)


async def cadence_version(
    session: AsyncSession, *, retailer_id: str, version: int
) -> CadencePublic | None:
    if version == DEFAULT_VERSION:
        return _default()
    row = await versioned.by_version(session, CadenceVersion, retailer_id, version)
    return None if row is None else CadencePublic(version=row.version, **row.spec)


async def list_versions(session: AsyncSession, *, retailer_id: str) -> list[CadencePublic]:
    rows = await versioned.all_versions(session, CadenceVersion, retailer_id)
    return [CadencePublic(version=row.version, **row.spec) for row in rows]


async def save_cadence(
    session: AsyncSession, *, retailer_id: str, cadence: CadenceIn
) -> CadencePublic:
    """Stores a new version; carts already running keep the one they started with."""
    version = await versioned.save(
        session, CadenceVersion, retailer_id, cadence.model_dump(mode="json")
    )
    return CadencePublic(version=version, **cadence.model_dump())
