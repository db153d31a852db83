"""Reading platform payloads defensively: every field is optional and may be malformed.

A field Winback cannot use (a phone number like ``555-555-BILL``, an email that is not one, a
date years ago) reads as absent, never as a reason to refuse a delivery the platform would then
retry for hours.
"""

import re
from datetime import datetime, timedelta
from typing import Any

from winback.carts.events import MAX_AMOUNT, MAX_EVENT_AGE
from winback.customers.identity import EMAIL_PATTERN
from winback.customers.phones import normalize_phone
from winback.platform.clock import as_utc, utcnow

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def amount(value: Any) -> float:
    try:
        amount = float(str(value))
    except (TypeError, ValueError):
        return 0.0
    return min(max(amount, 0.0), MAX_AMOUNT) if amount == amount else 0.0  # NaN is 0


def when(value: Any) -> datetime | None:
    """The platform's time, if it is a plausible one; else the time received."""
    if not isinstance(value, str):
        return None
    try:
        at = as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None
    now = utcnow()
    if at > now or at < now - MAX_EVENT_AGE + timedelta(days=1):
        return None
    return at


def currency(value: Any) -> str:
    code = (text(value) or "").upper()
    return code if _CURRENCY.fullmatch(code) else "USD"


def link(value: Any) -> str | None:
    url = text(value)
    if url and url.startswith(("https://", "http://")) and len(url) <= 2000:
        return url
    return None


def email(value: Any) -> str | None:
    email = text(value)
    return email.lower() if email and EMAIL_PATTERN.fullmatch(email) else None


def phone(value: Any, country: str) -> str | None:
    """E.164, reading a national number in the shop's country; unusable numbers are dropped."""
    phone = text(value)
    if not phone:
        return None
    try:
        return normalize_phone(phone, country)
    except ValueError:
        return None
