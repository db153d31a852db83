"""Durations as retailers write them in cadences and alert rules (pure functions, no server)."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winback.platform.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("3d", timedelta(days=3)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 2h ", timedelta(hours=2)),
        ("PT1H", timedelta(hours=1)),
        ("P2D", timedelta(days=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT45S", timedelta(seconds=45)),
        (120, timedelta(minutes=2)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=4), timedelta(hours=4)),
    ],
)
def test_every_written_form_parses(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad", ["", "P", "PT", "1x", "h", "1h 30m", "30m1h", "-5m", "1.5h", True, -1, None, [1]]
)
def test_anything_else_is_refused_with_the_forms_it_takes(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_an_absurdly_long_duration_is_refused_not_a_crash() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(f"{10**12}d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=3, minutes=5), "3d5m"),
    ],
)
def test_durations_are_shown_in_the_shortest_compact_form(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=0, max_value=400 * 86400))
def test_what_is_shown_parses_back_to_the_same_duration(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(
    st.integers(0, 400),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_compact_and_iso_forms_of_one_duration_agree(d: int, h: int, m: int, s: int) -> None:
    compact = "".join(f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if n)
    iso = f"P{d}DT{h}H{m}M{s}S"
    expected = timedelta(days=d, hours=h, minutes=m, seconds=s)
    assert parse_duration(iso) == expected
    assert parse_duration(compact or "0s") == expected
    assert format_duration(expected) == (compact or "0s")
