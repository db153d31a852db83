"""Carts: the latest snapshot and activity the storefront told us about, and its events.

The API keeps this row current for every event; the cart's workflow re-reads it when it wakes,
so minor edits never reach Temporal. The ``*_signalled`` flags record which course changes the
workflow has already been told about, so a repeated or retried request re-drives only what is
missing.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column
from workflows.vocabulary import CartStatus


class Cart(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "cart_id"),)

    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: the unique (retailer_id, cart_id) index leads with it. A second one
    # only cost writes, and on a table PostgreSQL had not analyzed yet it was the planner's pick
    # for "these 200 carts of this retailer": every row of the retailer read and filtered.
    retailer_id: str = Field(foreign_key="retailer.id")
    cart_id: str = Field(max_length=128)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)

    items: list[dict[str, Any]] = json_column(list)
    value: float = 0.0
    currency: str = "USD"
    snapshot_at: datetime | None = utc_column()
    last_activity_at: datetime | None = utc_column()
    last_page: str | None = Field(default=None, max_length=2000)
    link_url: str | None = Field(
        default=None, max_length=2000, description="The platform's own link back to this cart."
    )
    add_remove_count: int = 0

    status: str = Field(default=CartStatus.ACTIVE, max_length=20, index=True)
    nudge_reason: str | None = Field(default=None, max_length=30)
    abandoned_at: datetime | None = utc_column()
    ordered_at: datetime | None = utc_column()
    order_id: str | None = Field(default=None, max_length=200)
    order_value: float | None = None
    recovered_step: int | None = None
    recovered_channel: str | None = Field(default=None, max_length=20)
    opted_out_at: datetime | None = utc_column()

    cadence_version: int | None = None
    # The holdout: decided once, when the cart first could be touched (before its workflow
    # starts), from a stable hash of the shopper (``winback.carts.holdout``). The bucket is
    # 0..9999; the group is "treated" or "held_out" when the cadence held carts out then, and
    # None when it did not (or the cart predates holdouts). Never recomputed, so a later change
    # of ``holdout_percent`` reshuffles nobody.
    holdout_bucket: int | None = None
    holdout_group: str | None = Field(default=None, max_length=10, index=True)
    workflow_id: str | None = Field(default=None, max_length=300)
    workflow_started: bool = False
    contact_signalled: bool = False
    nudge_signalled: bool = False
    order_signalled: bool = False
    opt_out_signalled: bool = False
    callback_requested: bool = False
    callback_signalled: bool = False
    # The storefront snippet: the browser that owns the cart (a hash of its first-party id), and
    # the number a shopper typed into the nudge's "call me back" form (E.164). That number only
    # goes on the callback task; it is never the customer's contact, so nothing automated uses it.
    visitor_hash: str | None = Field(default=None, max_length=64)
    callback_phone: str | None = Field(default=None, max_length=20)

    created_at: datetime = utc_column(nullable=False, default_now=True)


class CartEvent(SQLModel, table=True):
    """Every event as received; the unique event id makes a resent event a no-op."""

    __table_args__ = (UniqueConstraint("retailer_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id")  # led by the unique index, as for Cart
    cart_id: str = Field(max_length=128, index=True)
    event_id: str = Field(max_length=200)
    type: str = Field(max_length=30)
    occurred_at: datetime = utc_column(nullable=False)
    received_at: datetime = utc_column(nullable=False, default_now=True)
    payload: dict[str, Any] = json_column()
