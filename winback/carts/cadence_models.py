"""Stored cadence versions. The spec itself (and its validation) lives in winback.carts.cadence."""

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column


class CadenceVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    version: int
    spec: dict[str, Any] = json_column()
    created_at: datetime = utc_column(nullable=False, default_now=True)
