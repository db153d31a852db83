"""Every platform webhook delivery, stored once before anything else happens.

Shopify retries a delivery it did not see answered within 5 seconds (for hours), so the row is
written and committed first: a retry finds it by the platform's delivery id and is answered at
once, and nothing is applied twice. The body itself is not kept (the cart event it became holds
what Winback needs), so a customer's erasure has nothing to chase here.
"""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.platform.clock import utcnow
from winback.platform.columns import utc_column


class DeliveryOutcome:
    APPLIED = "applied"  # became cart events
    IGNORED = "ignored"  # verified, but nothing for Winback (an unlinked or cancelled order)
    PRIVACY = "privacy"  # a privacy request, recorded and carried out


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("retailer_id", "platform", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    platform: str = Field(max_length=20)
    delivery_id: str = Field(max_length=200)
    topic: str = Field(max_length=60)
    cart_id: str | None = Field(default=None, max_length=128)
    outcome: str = Field(default=DeliveryOutcome.APPLIED, max_length=20)
    detail: str | None = Field(default=None, max_length=500)
    received_at: datetime = utc_column(nullable=False, default_now=True)


async def seen_delivery(
    session: AsyncSession, *, retailer_id: str, platform: str, delivery_id: str
) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(
        WebhookDelivery.retailer_id == retailer_id,
        WebhookDelivery.platform == platform,
        WebhookDelivery.delivery_id == delivery_id,
    )
    return (await session.exec(query)).first()


async def claim_delivery(
    session: AsyncSession, *, retailer_id: str, platform: str, delivery_id: str, topic: str
) -> WebhookDelivery | None:
    """The new delivery's row (flushed, not committed), or None if it was already received."""
    if await seen_delivery(
        session, retailer_id=retailer_id, platform=platform, delivery_id=delivery_id
    ):
        return None
    row = WebhookDelivery(
        retailer_id=retailer_id,
        platform=platform,
        delivery_id=delivery_id,
        topic=topic,
        received_at=utcnow(),
    )
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a concurrent retry of the same delivery won
        return None
    return row
