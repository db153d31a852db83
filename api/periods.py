"""The period every report route takes: ``[since, until)`` in UTC, by default the last 30 days."""

from datetime import datetime, timedelta

from fastapi import HTTPException, status

from winback.platform.clock import as_utc, utcnow


def report_period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
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
