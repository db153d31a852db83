"""Quiet hours in the recipient's local time: customer zone, else the phone's, else the store's."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from winback.customers.phones import timezone_of_phone


def recipient_zone(customer_tz: str | None, phone: str | None, store_tz: str) -> ZoneInfo:
    for candidate in (customer_tz, timezone_of_phone(phone) if phone else None, store_tz):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When quiet hours end if ``at`` falls inside them (as an aware datetime), else None.

    ``start`` > ``end`` means the window spans midnight (the default 21:00-08:00).
    """
    local = at.astimezone(zone)
    now = local.time()
    if start == end:
        return None
    spans_midnight = start > end
    inside = (now >= start or now < end) if spans_midnight else (start <= now < end)
    if not inside:
        return None
    end_day = local.date()
    if spans_midnight and now >= start:
        end_day += timedelta(days=1)
    wake = datetime.combine(end_day, end, tzinfo=zone)
    return wake.astimezone(at.tzinfo)


def parse_clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
