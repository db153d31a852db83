"""Cart events in, cart state and pending nudges out."""

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field
from sqlmodel import col, select
from temporalio.service import RPCError

from api.deps import (
    CartRelayDep,
    EventRetailerDep,
    EventWriterDep,
    RetailerDep,
    SessionDep,
    SettingsDep,
    TemporalClientDep,
)
from api.metrics import EVENTS, observe_signals
from winback.carts.events import CART_ID_PATTERN, CartEventIn, store_event
from winback.carts.fast_events import can_batch, needs_workflow
from winback.carts.models import Cart
from winback.carts.nudges import pending_nudges
from winback.carts.relay import QUEUED, queue_from_row, tell_or_queue
from winback.carts.workflow_sync import cart_workflow_id
from winback.customers.identity import normalize_national_phone
from winback.customers.models import Customer
from winback.messaging.models import Message, MessagePublic
from winback.platform.logs import bind_now
from workflows.carts.cart_recovery import CartRecoveryWorkflow
from workflows.carts.types import CartState

router = APIRouter(prefix="/v1/carts", tags=["carts"])
CartId = Annotated[str, Path(pattern=CART_ID_PATTERN, description="The storefront's cart id.")]


class EventAccepted(BaseModel):
    cart_id: str
    duplicate: bool
    workflow_id: str | None = Field(
        description="The cart's workflow: the one started, or queued to start, for it; null "
        "while the cart has nothing that starts one (an anonymous cart, no nudge trigger)."
    )
    workflow_actions: list[str] = Field(
        description="What this event made the workflow hear before the answer: signals to a "
        "started workflow (`contact_known`, `nudge_trigger`, `order_placed`, `opted_out`, "
        "`callback_requested`), or `queued`: the event is stored and the workflow's start is "
        "queued, sent by this process within milliseconds (after a crash, by the worker's "
        "sweep within its interval). `[]`: nothing to tell (a minor edit, a duplicate)."
    )


class CartPublic(BaseModel):
    cart_id: str
    status: str
    items: list[dict[str, Any]]
    value: float
    currency: str
    last_activity_at: datetime | None
    last_page: str | None
    abandoned_at: datetime | None
    ordered_at: datetime | None
    order_id: str | None
    order_value: float | None
    recovered_step: int | None
    recovered_channel: str | None
    cadence_version: int | None
    holdout_group: Literal["treated", "held_out"] | None = Field(
        default=None,
        description="The cart's holdout group, decided before its first touch; null when its "
        "cadence held nothing out.",
    )
    workflow_id: str | None
    customer_email: str | None = None
    customer_phone: str | None = None
    messages: list[MessagePublic]
    workflow: CartState | None = None


@router.post(
    "/{cart_id}/events", response_model=EventAccepted, status_code=status.HTTP_202_ACCEPTED
)
async def post_cart_event(
    cart_id: CartId,
    event: CartEventIn,
    retailer: EventRetailerDep,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    relay: CartRelayDep,
    writer: EventWriterDep,
) -> EventAccepted:
    """Stores one storefront event; starts or signals the cart's workflow only if its course
    changes. A 202 means the event is committed. A workflow start is queued, not awaited
    (`workflow_actions: ["queued"]`); signals to a started workflow are sent before the
    answer. Resending an event id is safe. On 503 the event is stored: resend it."""
    started = time.perf_counter()
    bind_now(retailer_id=retailer.id, cart_id=cart_id)  # on every log line of this request
    if can_batch(event):  # all but orders, opt-outs, nudge replies: stored with others' events
        normalize_national_phone(event.customer, retailer.country)  # a 422 of its own
        written = await writer.record(retailer, cart_id, event)
        EVENTS.labels("api", "duplicate" if written.duplicate else "stored").inc()
        duplicate = written.duplicate
        actions = queue_from_row(relay, retailer, written.cart, started)
        if actions is None and not needs_workflow(written.cart):
            actions = []
        if actions is not None:
            observe_signals(actions, started)
            queued = actions == [QUEUED]
            return EventAccepted(
                cart_id=cart_id,
                duplicate=duplicate,
                workflow_id=cart_workflow_id(retailer.id, cart_id)
                if queued
                else written.cart.workflow_id,
                workflow_actions=actions,
            )
        cart = await session.get(Cart, written.cart.id)
        assert cart is not None
    else:
        recorded = await store_event(session, retailer=retailer, cart_id=cart_id, event=event)
        EVENTS.labels("api", "duplicate" if recorded.duplicate else "stored").inc()
        cart, duplicate = recorded.cart, recorded.duplicate
    actions = await tell_or_queue(
        session,
        client,
        relay,
        task_queue=settings.task_queue,
        retailer=retailer,
        cart=cart,
        since=started,
    )
    observe_signals(actions, started)
    queued = actions == [QUEUED]
    return EventAccepted(
        cart_id=cart_id,
        duplicate=duplicate,
        workflow_id=cart_workflow_id(retailer.id, cart_id) if queued else cart.workflow_id,
        workflow_actions=actions,
    )


@router.get("/{cart_id}", response_model=CartPublic)
async def read_cart(
    cart_id: CartId, retailer: RetailerDep, session: SessionDep, client: TemporalClientDep
) -> CartPublic:
    """The cart's snapshot, every message and nudge sent for it, and its workflow's state."""
    cart = await _cart_or_404(session, retailer.id, cart_id)
    customer = await session.get(Customer, cart.customer_id) if cart.customer_id else None
    messages = await session.exec(
        select(Message)
        .where(Message.retailer_id == retailer.id, Message.cart_id == cart_id)
        .order_by(col(Message.created_at), col(Message.id))
    )
    state = None
    if cart.workflow_started:
        handle = client.get_workflow_handle_for(
            CartRecoveryWorkflow.run, cart_workflow_id(retailer.id, cart_id)
        )
        try:
            state = await handle.query(CartRecoveryWorkflow.state)
        except RPCError:
            state = None  # no worker to answer right now; the rest still helps
    return CartPublic(
        **cart.model_dump(exclude={"items"}),
        items=cart.items,
        customer_email=customer.email if customer else None,
        customer_phone=customer.phone if customer else None,
        messages=[MessagePublic.model_validate(m) for m in messages],
        workflow=state,
    )


@router.get("/{cart_id}/nudges", response_model=list[MessagePublic])
async def read_pending_nudges(
    cart_id: CartId, retailer: RetailerDep, session: SessionDep
) -> list[MessagePublic]:
    """On-site nudges waiting to be shown; the storefront polls this. Reply with a
    `nudge_reply` event (chat, callback or dismiss)."""
    rows = await pending_nudges(session, retailer_id=retailer.id, cart_id=cart_id)
    return [MessagePublic.model_validate(m) for m in rows]


async def _cart_or_404(session: SessionDep, retailer_id: str, cart_id: str) -> Cart:
    cart = (
        await session.exec(
            select(Cart).where(Cart.retailer_id == retailer_id, Cart.cart_id == cart_id)
        )
    ).first()
    if cart is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cart {cart_id!r}")
    return cart
