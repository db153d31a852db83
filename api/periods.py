"""The period every report route takes: ``[since, until)`` in UTC, by default the last 30 days;
and the same as a page's picker gives it, whole days in the store's time zone."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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


DEFAULT_DAYS = 30
MAX_PAGE_DAYS = 731  # what a page offers: two years of days is already a dense chart


def local_day_period(
    first: date | None, last: date | None, timezone: str, *, today: date | None = None
) -> tuple[date, date, datetime, datetime]:
    """A page's period as the days a person picks, both included, in the store's time zone:
    ``(first, last, since, until)`` with ``[since, until)`` in UTC for the report routes. By
    default the last 30 days, today included. Refused like ``report_period`` (422) when it ends
    before it starts, and when it is longer than ``MAX_PAGE_DAYS``."""
    zone = ZoneInfo(timezone)
    today = today or utcnow().astimezone(zone).date()
    if last is None:
        last = today if first is None or first <= today else first
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from: must not be after to")
    if (last - first).days + 1 > MAX_PAGE_DAYS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"a period is at most {MAX_PAGE_DAYS} days"
        )
    try:
        since = datetime.combine(first, time(), zone)
        until = datetime.combine(last + timedelta(days=1), time(), zone)
    except OverflowError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "from/to: out of range"
        ) from None
    start, end = report_period(since, until)
    return first, last, start, end
