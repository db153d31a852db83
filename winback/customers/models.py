"""Shoppers, per retailer: contact, locale, time zone and consent per channel."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column
from workflows.vocabulary import PHONE_CHANNELS


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    external_id: str | None = Field(default=None, max_length=200, index=True)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=20, index=True, description="E.164")
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=20)
    timezone: str | None = Field(default=None, max_length=64)
    consent_email: bool = False
    consent_sms: bool = False
    consent_voice: bool = False
    updated_at: datetime = utc_column(nullable=False, default_now=True)
    erased_at: datetime | None = utc_column()  # PII removed on request; the row keeps the ids

    def address_for(self, channel: str) -> str | None:
        if channel == "email":
            return self.email
        return self.phone if channel in PHONE_CHANNELS else None

    def consents_to(self, channel: str) -> bool:
        """A call by an agent needs the same consent as an automated one."""
        return {
            "email": self.consent_email,
            "sms": self.consent_sms,
            "voice": self.consent_voice,
            "agent_call": self.consent_voice,
        }.get(channel, False)
