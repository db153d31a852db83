"""Quiet hours in the recipient's local time (pure functions: no server, no database)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winback.messaging.quiet_hours import parse_clock, quiet_until, recipient_zone

MADRID = ZoneInfo("Europe/Madrid")
NIGHT = (time(21, 0), time(8, 0))  # the default: spans midnight


def _madrid(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=MADRID)


@pytest.mark.parametrize(
    ("at", "until"),
    [
        (_madrid(10, 20, 59), None),
        (_madrid(10, 21, 0), _madrid(11, 8)),  # from 21:00 to the next morning
        (_madrid(10, 23, 30), _madrid(11, 8)),
        (_madrid(11, 0, 0), _madrid(11, 8)),  # after midnight: the same morning
        (_madrid(11, 7, 59), _madrid(11, 8)),
        (_madrid(11, 8, 0), None),
        (_madrid(11, 13, 0), None),
    ],
)
def test_a_window_across_midnight_ends_the_next_morning(
    at: datetime, until: datetime | None
) -> None:
    assert quiet_until(at, MADRID, *NIGHT) == until


def test_a_window_within_the_day_ends_the_same_day() -> None:
    lunch = (time(13, 0), time(15, 0))

    assert quiet_until(_madrid(10, 12, 59), MADRID, *lunch) is None
    assert quiet_until(_madrid(10, 14, 0), MADRID, *lunch) == _madrid(10, 15)
    assert quiet_until(_madrid(10, 15, 0), MADRID, *lunch) is None


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    assert quiet_until(_madrid(10, 3), MADRID, time(0, 0), time(0, 0)) is None


def test_the_window_is_the_recipients_local_time_and_the_answer_keeps_the_callers_zone() -> None:
    at = datetime(2026, 3, 10, 21, 30, tzinfo=UTC)  # 22:30 in Madrid, 14:30 in San Francisco

    assert quiet_until(at, ZoneInfo("America/Los_Angeles"), *NIGHT) is None
    until = quiet_until(at, MADRID, *NIGHT)
    assert until == datetime(2026, 3, 11, 7, 0, tzinfo=UTC)  # 08:00 in Madrid
    assert until is not None and until.tzinfo is UTC


def test_the_zone_comes_from_the_customer_then_the_phone_then_the_store() -> None:
    phone = "+14155552671"  # San Francisco

    assert recipient_zone("Asia/Tokyo", phone, "Europe/Madrid").key == "Asia/Tokyo"
    assert recipient_zone(None, phone, "Europe/Madrid").key == "America/Los_Angeles"
    assert recipient_zone("Not/AZone", phone, "Europe/Madrid").key == "America/Los_Angeles"
    assert recipient_zone(None, "+34612000001", "Europe/Madrid").key == "Europe/Madrid"
    assert recipient_zone(None, None, "Mars/Olympus").key == "UTC"


def test_clock_times_read_as_hours_and_minutes() -> None:
    assert parse_clock("07:05") == time(7, 5)
    assert parse_clock("21:00") == time(21, 0)


ZONES = st.sampled_from(["UTC", "Europe/Madrid", "America/New_York", "Asia/Kolkata"])
# Hours chosen away from daylight-saving changes (01:00-03:00), so local clocks are unambiguous.
STARTS = st.builds(time, st.integers(19, 23), st.sampled_from([0, 15, 30, 45]))
ENDS = st.builds(time, st.integers(5, 9), st.sampled_from([0, 15, 30, 45]))
INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@given(at=INSTANTS, zone=ZONES, start=STARTS, end=ENDS)
def test_a_postponed_send_goes_at_the_next_end_of_the_window_within_a_day(
    at: datetime, zone: str, start: time, end: time
) -> None:
    tz = ZoneInfo(zone)
    local = at.astimezone(tz).time()
    inside = local >= start or local < end

    until = quiet_until(at, tz, start, end)

    if not inside:
        assert until is None
        return
    assert until is not None
    assert at < until <= at + timedelta(hours=24)
    assert until.astimezone(tz).time() == end
    assert quiet_until(until, tz, start, end) is None  # the retry is not postponed again
