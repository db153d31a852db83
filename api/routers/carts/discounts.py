"""Discount code pools: the retailer uploads unique codes; each is drawn at most once."""

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import col, select

from api.deps import RetailerDep, SessionDep
from winback.carts.discount_models import DiscountCode

router = APIRouter(prefix="/v1/discount-pools", tags=["discounts"])
PoolName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,100}$", max_length=100)]


class CodesUpload(BaseModel):
    codes: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=10000
    )


class PoolPublic(BaseModel):
    pool: str
    total: int
    available: int
    added: int = 0


async def _counts(session: SessionDep, retailer_id: str, pool: str) -> tuple[int, int]:
    base = (
        select(func.count())
        .select_from(DiscountCode)
        .where(DiscountCode.retailer_id == retailer_id, DiscountCode.pool == pool)
    )
    total = (await session.exec(base)).one()
    free = (await session.exec(base.where(col(DiscountCode.assigned_key).is_(None)))).one()
    return int(total), int(free)


@router.post("/{pool}/codes", response_model=PoolPublic, status_code=status.HTTP_201_CREATED)
async def upload_codes(
    pool: PoolName, body: CodesUpload, retailer: RetailerDep, session: SessionDep
) -> PoolPublic:
    """Adds codes to a pool; codes already in it are ignored."""
    existing = set(
        (
            await session.exec(
                select(DiscountCode.code).where(
                    DiscountCode.retailer_id == retailer.id, DiscountCode.pool == pool
                )
            )
        ).all()
    )
    new = [c for c in dict.fromkeys(body.codes) if c not in existing]
    session.add_all(DiscountCode(retailer_id=retailer.id, pool=pool, code=c) for c in new)
    await session.flush()
    total, free = await _counts(session, retailer.id, pool)
    return PoolPublic(pool=pool, total=total, available=free, added=len(new))


@router.get("/{pool}", response_model=PoolPublic)
async def read_pool(pool: PoolName, retailer: RetailerDep, session: SessionDep) -> PoolPublic:
    """How many codes the pool has, and how many are still free."""
    total, free = await _counts(session, retailer.id, pool)
    return PoolPublic(pool=pool, total=total, available=free)
