"""Phone numbers on the way in, and the time zone a number gives away (no server, no database)."""

import pytest

from winback.customers.phones import normalize_phone, timezone_of_phone


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 415 555 2671", None, "+14155552671"),
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("612 00 00 01", "ES", "+34612000001"),
        ("+34 612-000-001", "US", "+34612000001"),  # an international number keeps its country
        ("00 44 7911 123456", "ES", "+447911123456"),
    ],
)
def test_common_formats_become_e164(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("call me", "is not a phone number"),
        ("415 555 2671", "is not a phone number"),  # no country and no default region
        ("+1 415 555", "is not a valid phone number"),
        ("+1 000 000 0000", "is not a valid phone number"),
    ],
)
def test_what_is_not_a_number_is_refused_by_name(raw: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        normalize_phone(raw)

    assert repr(raw) in str(refused.value)


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        ("+14155552671", "America/Los_Angeles"),
        ("+61293744000", "Australia/Sydney"),
        ("+74951234567", "Europe/Moscow"),
        ("+34612000001", None),  # a Spanish mobile: the mainland or the Canaries
        ("+18005551234", None),  # toll free: anywhere in North America
        ("not a number", None),
    ],
)
def test_a_number_gives_its_zone_only_when_its_prefix_pins_one_down(
    e164: str, zone: str | None
) -> None:
    assert timezone_of_phone(e164) == zone
