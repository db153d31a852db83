"""Reports for the retailer, from its own data."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import RetailerDep, SessionDep
from winback.reports import CartRecoveryReport, cart_recovery_report
from winback.timeutil import as_utc, utcnow

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/cart-recovery", response_model=CartRecoveryReport)
async def read_cart_recovery_report(
    retailer: RetailerDep,
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> CartRecoveryReport:
    """Carts started, abandoned, contacted within 24 h, recovered and revenue recovered, by step
    and channel, for carts created in the period; plus the cart study's test."""
    try:
        end = as_utc(until) if until else utcnow()
        start = as_utc(since) if since else end - timedelta(days=30)
    except OverflowError:  # e.g. year 1 with a +01:00 offset
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "since/until: out of range"
        ) from None
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since: must be before until")
    return await cart_recovery_report(session, retailer_id=retailer.id, since=start, until=end)
