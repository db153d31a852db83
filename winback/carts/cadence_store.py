"""Reading and writing a retailer's cadence versions (version 0 is the built-in default)."""

from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.cadence import CadenceIn, CadencePublic, default_cadence
from winback.carts.cadence_models import CadenceVersion
from winback.platform import versioned
from winback.platform.caching import TtlCache

DEFAULT_VERSION = 0


def _default() -> CadencePublic:
    return CadencePublic(version=DEFAULT_VERSION, **default_cadence().model_dump())


async def current_cadence(session: AsyncSession, *, retailer_id: str) -> CadencePublic:
    """The newest stored version, or the built-in default as version 0."""
    row = await versioned.latest(session, CadenceVersion, retailer_id)
    return _default() if row is None else CadencePublic(version=row.version, **row.spec)


# A cart's first event reads the retailer's cadence to start its workflow: cached per process for
# a few seconds (a new version is saved rarely; ``save_cadence`` clears this process's copy at
# once, other processes see it within the TTL, and a cart started in between keeps the version
# it was started with, as every running cart does).
_CURRENT: TtlCache[CadencePublic] = TtlCache()


async def current_cadence_cached(session: AsyncSession, *, retailer_id: str) -> CadencePublic:
    """``current_cadence``, from the per-process cache when it is seconds old at most."""
    cached = _CURRENT.get(retailer_id)
    if cached is None:
        cached = await current_cadence(session, retailer_id=retailer_id)
        _CURRENT.put(retailer_id, cached)
    return cached


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
    _CURRENT.clear()
    return CadencePublic(version=version, **cadence.model_dump())
