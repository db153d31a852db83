"""Consent history: one row per actual change of a customer's consent on a channel."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column
from workflows.vocabulary import PROVIDER_CHANNELS, ProviderChannel

ConsentChannel = ProviderChannel
CONSENT_CHANNELS = PROVIDER_CHANNELS


class ConsentChange(SQLModel, table=True):
    __tablename__ = "consent_change"

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str = Field(max_length=10, description="email | sms | voice")
    granted: bool
    source: str = Field(
        max_length=40,
        description="cart_event | feedback | api | sms_stop | sms_start | unsubscribe_link | …",
    )
    at: datetime = utc_column(nullable=False, index=True)
