"""Durations as people write them in configuration: ``"90s"``, ``"30m"``, ``"1h30m"``, ``"3d"``
or ISO 8601, read into ``timedelta`` and written back the same way (cadences, alert rules)."""

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


_COMPACT = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(value: Any) -> timedelta:
    """Accepts ``"90s"``, ``"30m"``, ``"1h30m"``, ``"3d"``, ISO 8601 (``"PT1H"``) or seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string like '30m', '1h' or '3d'")
    try:
        if isinstance(value, int | float):
            if value < 0:
                raise ValueError("a duration cannot be negative")
            return timedelta(seconds=value)
        if isinstance(value, str):
            text = value.strip()
            for pattern in (_COMPACT, _ISO):
                match = pattern.fullmatch(text)
                if match and text not in ("", "P", "PT"):
                    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
                    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None
    raise ValueError(f"{value!r} is not a duration: use e.g. '90s', '30m', '1h30m', '3d' or 'PT1H'")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": "string", "examples": ["30m", "1h", "3d"]}),
]
