"""A shopper calling the store, recorded so every console of the right queue can pop the
caller's panel, whichever API process took the call's webhook."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column


class ScreenPop(SQLModel, table=True):
    __tablename__ = "screen_pop"

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    call_sid: str = Field(max_length=64, index=True)
    caller: str = Field(max_length=40, description="E.164 when it parses, else as Twilio sent it.")
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    queue: str = Field(max_length=60)
    created_at: datetime = utc_column(nullable=False, default_now=True)
