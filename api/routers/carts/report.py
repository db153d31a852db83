"""The cart-recovery report for the retailer, from its own data."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReportReaderDep, SessionDep
from api.periods import report_period
from winback.carts.report import CartRecoveryReport, cart_recovery_report

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/cart-recovery", response_model=CartRecoveryReport)
async def read_cart_recovery_report(
    reader: ReportReaderDep,
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> CartRecoveryReport:
    """Carts started, abandoned, contacted within 24 h, recovered and revenue recovered, by step
    and channel, for carts created in the period; plus the cart study's test; and the same by
    day in the store's time zone: the funnel per creation day, recovered revenue per
    abandonment day, step and channel. Carts belong to no business unit: a unit's key is a 403."""
    reader.require_whole_retailer()
    start, end = report_period(since, until)
    return await cart_recovery_report(
        session,
        retailer_id=reader.retailer.id,
        since=start,
        until=end,
        timezone=reader.retailer.timezone,
    )
