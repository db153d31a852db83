"""Every event a provider sends us (SendGrid events, Twilio callbacks), stored once.

The unique (retailer, provider, event id) makes a redelivered event a no-op, per retailer (one
retailer's event ids never hide another's). The ids: SendGrid's ``sg_event_id``; Twilio's
``MessageSid:MessageStatus`` for a status callback, ``CallSid:CallStatus`` for a call, the
``SmsSid`` of an inbound message.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column


class ProviderEvent(SQLModel, table=True):
    __tablename__ = "provider_event"
    __table_args__ = (UniqueConstraint("retailer_id", "provider", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=200)
    type: str = Field(max_length=40)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    payload: dict[str, Any] = json_column()
    received_at: datetime = utc_column(nullable=False, default_now=True)
