"""Phone numbers: normalised to E.164 on the way in, and their time zone when nothing better."""

import phonenumbers
from phonenumbers import timezone as phone_timezone


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 (``+14155550123``) from any common format; ValueError if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"{raw!r} is not a phone number ({err})") from err
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def timezone_of_phone(e164: str) -> str | None:
    """The IANA zone of a number when its prefix pins one down, else None."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else None
