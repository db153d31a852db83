"""Every touch sent to a shopper (email, SMS, voice, on-site nudge), and the suppression list.

The unique ``dedupe_key`` (workflow and step) is claimed before any provider call, so a
retried activity finds the row and never sends twice; a row a crash left ``sending`` is settled
by ``winback.messaging.reconcile`` (found at the provider, or sent again, with the reason).
With no provider keys set, this table is the outbox: the message is written here and nowhere
else.
"""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import utc_column
from workflows.vocabulary import MessageStatus


class MessageBase(SQLModel):
    channel: str = Field(max_length=20)
    cart_id: str | None = Field(default=None, max_length=128, index=True)
    step_index: int | None = None
    template: str | None = Field(default=None, max_length=100)
    to_address: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=500)
    body: str = ""
    html: str | None = None
    discount_code: str | None = Field(default=None, max_length=100)
    offer: str | None = Field(default=None, max_length=100, description="On-site: chat,callback")
    reply: str | None = Field(default=None, max_length=30)
    status: str = Field(default=MessageStatus.SENDING, max_length=20)
    provider: str | None = Field(default=None, max_length=20)
    provider_message_id: str | None = Field(default=None, max_length=200)
    error: str | None = None
    resolution: str | None = Field(
        default=None,
        description="How a send interrupted by a crash was settled: found at the provider, "
        "sent again, or why not.",
    )


class Message(MessageBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    workflow_id: str | None = Field(default=None, max_length=300)
    dedupe_key: str = Field(unique=True, max_length=300)
    created_at: datetime = utc_column(nullable=False, index=True, default_now=True)
    sent_at: datetime | None = utc_column()
    # Wall-clock time of the claim (``created_at`` is the workflow's time of the step): a retry
    # that finds the row still ``sending`` asks the provider what it got since then.
    claimed_at: datetime | None = utc_column()


class MessagePublic(MessageBase):
    id: int
    created_at: datetime
    sent_at: datetime | None


class Suppression(SQLModel, table=True):
    """Addresses that must never be messaged again on a channel, whatever the cart says."""

    __table_args__ = (UniqueConstraint("retailer_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    channel: str = Field(max_length=20)
    address: str = Field(max_length=320)
    reason: str = Field(max_length=100)
    created_at: datetime = utc_column(nullable=False, default_now=True)
