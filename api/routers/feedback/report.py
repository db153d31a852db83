"""The closed-loop feedback report for the retailer, from its own data."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReportReaderDep, SessionDep
from api.periods import report_period
from winback.feedback.report import FeedbackReport, feedback_report

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/feedback", response_model=FeedbackReport)
async def read_feedback_report(
    reader: ReportReaderDep,
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
    without the closed loop; and NPS, CSAT and cases opened per day in the store's time zone.
    A business unit's key (`POST /v1/api-keys`) reads only its own unit; another is a 403."""
    start, end = report_period(since, until)
    return await feedback_report(
        session,
        retailer_id=reader.retailer.id,
        since=start,
        until=end,
        business_unit=reader.unit(business_unit),
        timezone=reader.retailer.timezone,
    )
