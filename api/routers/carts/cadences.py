"""Cadences: versioned; a running cart keeps its version, new carts get the current one."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api.deps import RetailerDep, SessionDep
from winback.carts.cadence import CadenceIn, CadencePublic
from winback.carts.cadence_store import (
    cadence_version,
    current_cadence,
    list_versions,
    save_cadence,
)
from winback.platform.db import retry_on_conflict

router = APIRouter(prefix="/v1/cadence", tags=["cadences"])


@router.get("", response_model=CadencePublic)
async def read_current_cadence(retailer: RetailerDep, session: SessionDep) -> CadencePublic:
    """The cadence new carts start with (version 0 is the built-in default)."""
    return await current_cadence(session, retailer_id=retailer.id)


@router.put("", response_model=CadencePublic, status_code=status.HTTP_201_CREATED)
async def replace_cadence(
    body: CadenceIn, retailer: RetailerDep, session: SessionDep
) -> CadencePublic:
    """Stores a new version of the cadence. Carts already running are not affected. Two saves
    at once both succeed, as consecutive versions."""
    return await retry_on_conflict(
        session,
        lambda: save_cadence(session, retailer_id=retailer.id, cadence=body),
        keep=[retailer],
    )


@router.get("/versions", response_model=list[CadencePublic])
async def read_cadence_versions(retailer: RetailerDep, session: SessionDep) -> list[CadencePublic]:
    """Every stored version, oldest first."""
    return await list_versions(session, retailer_id=retailer.id)


@router.get("/versions/{version}", response_model=CadencePublic)
async def read_cadence_version(
    version: Annotated[int, Path(ge=0, le=2**31 - 1)], retailer: RetailerDep, session: SessionDep
) -> CadencePublic:
    """One version, as carts that started with it see it."""
    found = await cadence_version(session, retailer_id=retailer.id, version=version)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cadence version {version}")
    return found
