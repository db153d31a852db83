"""The outbox: every message and nudge sent, readable without any provider account."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import RetailerDep, SessionDep
from winback.messaging.models import Message, MessagePublic
from workflows.vocabulary import MessageStatus

router = APIRouter(prefix="/v1/outbox", tags=["outbox"])


@router.get("", response_model=list[MessagePublic])
async def read_outbox(
    retailer: RetailerDep,
    session: SessionDep,
    channel: Literal["onsite", "email", "sms", "voice", "agent_call"] | None = None,
    cart_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    held_out: Annotated[
        bool,
        Query(
            description="List instead what the holdout group would have been sent (recorded, "
            "never sent)."
        ),
    ] = False,
) -> list[MessagePublic]:
    """Messages sent to shoppers, newest first."""
    query = select(Message).where(Message.retailer_id == retailer.id)
    is_held_out = col(Message.status) == MessageStatus.HELD_OUT
    query = query.where(is_held_out if held_out else ~is_held_out)
    if channel:
        query = query.where(Message.channel == channel)
    if cart_id:
        query = query.where(Message.cart_id == cart_id)
    rows = await session.exec(
        query.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(limit)
    )
    return [MessagePublic.model_validate(m) for m in rows]
