"""The cart-recovery report for the retailer, from its own data."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import RetailerDep, SessionDep
from api.periods import report_period
from winback.carts.report import CartRecoveryReport, cart_recovery_report

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
    start, end = report_period(since, until)
    return await cart_recovery_report(session, retailer_id=retailer.id, since=start, until=end)
