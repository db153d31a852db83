"""Column helpers shared by the tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from winback.platform.clock import utcnow
from winback.platform.db import UTCDateTime


def utc_column(*, nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    """A timezone-aware datetime field."""
    kwargs: dict[str, Any] = {}
    if default_now:
        kwargs["default_factory"] = utcnow
    else:
        kwargs["default"] = None
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


def json_column(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


__all__ = ["datetime", "json_column", "utc_column"]
