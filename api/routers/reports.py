"""Reports for the retailer, from its own data."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import RetailerDep, SessionDep
from winback.feedback_reports import FeedbackReport, feedback_report
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
    start, end = _period(since, until)
    return await cart_recovery_report(session, retailer_id=retailer.id, since=start, until=end)


@router.get("/feedback", response_model=FeedbackReport)
async def read_feedback_report(
    retailer: RetailerDep,
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
    business_unit: Annotated[
        str | None, Query(max_length=60, description="Only this store / business unit.")
    ] = None,
) -> FeedbackReport:
    """Answers and NPS/CSAT (by when they were given); for the cases opened in the period: by
    severity, contact rate, median time to first contact, SLA adherence, root causes ranked
    (Pareto), customers and revenue won back; and the deck's ROI table, per month, with and
    without the closed loop."""
    start, end = _period(since, until)
    return await feedback_report(
        session, retailer_id=retailer.id, since=start, until=end, business_unit=business_unit
    )


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC; by default the last 30 days."""
    try:
        end = as_utc(until) if until else utcnow()
        start = as_utc(since) if since else end - timedelta(days=30)
    except OverflowError:  # e.g. year 1 with a +01:00 offset
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "since/until: out of range"
        ) from None
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since: must be before until")
    return start, end
