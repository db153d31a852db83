"""Per-retailer message templates (Jinja2, rendered in a sandbox)."""

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict
from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column
from workflows.vocabulary import Channel

TemplateChannel = Literal[Channel.ONSITE, Channel.EMAIL, Channel.SMS, Channel.VOICE]


class MessageTemplateBase(SQLModel):
    channel: TemplateChannel = Field(sa_type=String(20))
    subject: str | None = Field(default=None, max_length=500, description="Email only.")
    body: str = Field(min_length=1, max_length=20000, description="Text (SMS, voice, on-site).")
    html: str | None = Field(default=None, max_length=200000, description="Email only.")


class MessageTemplateCreate(MessageTemplateBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class MessageTemplate(MessageTemplateBase, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    name: str = Field(max_length=100)
    updated_at: datetime = utc_column(nullable=False, default_now=True)


class MessageTemplatePublic(MessageTemplateBase):
    name: str
    is_default: bool = False
