"""The on-site nudges a cart's workflow has offered and the storefront has not answered yet.

One query for both readers: the retailer's backend (``GET /v1/carts/{id}/nudges``) and the
snippet in the shopper's browser (``GET /v1/client/carts/{id}/nudge``).
"""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.messaging.models import Message
from workflows.vocabulary import MessageStatus


async def pending_nudges(session: AsyncSession, *, retailer_id: str, cart_id: str) -> list[Message]:
    rows = await session.exec(
        select(Message)
        .where(
            Message.retailer_id == retailer_id,
            Message.cart_id == cart_id,
            Message.channel == "onsite",
            Message.status == MessageStatus.PENDING,
        )
        .order_by(col(Message.id))
    )
    return list(rows)
