"""Discount codes: pools of unique codes uploaded by a retailer, each drawn at most once."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column


class DiscountCode(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("retailer_id", "pool", "code"),
        UniqueConstraint("retailer_id", "assigned_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    pool: str = Field(max_length=100, index=True)
    code: str = Field(max_length=100)
    assigned_key: str | None = Field(default=None, max_length=300)
    assigned_at: datetime | None = utc_column()
