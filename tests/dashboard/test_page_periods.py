"""The dashboards' period picker: whole days in the store's time zone, both ends included."""

from datetime import UTC, date, datetime

import pytest
from fastapi import HTTPException

from api.periods import MAX_PAGE_DAYS, local_day_period

TODAY = date(2026, 12, 1)


def test_by_default_the_last_30_days_with_today() -> None:
    first, last, since, until = local_day_period(None, None, "UTC", today=TODAY)
    assert (first, last) == (date(2026, 11, 2), TODAY)
    assert (since, until) == (
        datetime(2026, 11, 2, tzinfo=UTC),
        datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_days_are_the_stores_days() -> None:
    """Madrid is UTC+1 in winter: its 1 December starts at 23:00 UTC the day before."""
    _, _, since, until = local_day_period(TODAY, TODAY, "Europe/Madrid", today=TODAY)
    assert since == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert until == datetime(2026, 12, 1, 23, tzinfo=UTC)


def test_one_end_given() -> None:
    assert local_day_period(date(2026, 11, 20), None, "UTC", today=TODAY)[:2] == (
        date(2026, 11, 20),
        TODAY,
    )
    assert local_day_period(None, date(2026, 6, 30), "UTC", today=TODAY)[:2] == (
        date(2026, 6, 1),
        date(2026, 6, 30),
    )


@pytest.mark.parametrize(
    ("first", "last", "says"),
    [
        (date(2026, 11, 3), date(2026, 11, 2), "must not be after"),
        (date(2020, 1, 1), TODAY, f"at most {MAX_PAGE_DAYS} days"),
        (date.max, date.max, "out of range"),
    ],
)
def test_a_period_that_cannot_be_is_a_422(first: date, last: date, says: str) -> None:
    with pytest.raises(HTTPException) as refused:
        local_day_period(first, last, "UTC", today=TODAY)
    assert refused.value.status_code == 422 and says in str(refused.value.detail)
