"""The client endpoints ``winback.js`` calls from the shopper's browser, with a publishable key.

They reuse the cart pipeline of ``POST /v1/carts/{id}/events`` (``record_event`` and the
workflow sync) and the nudge query of ``GET /v1/carts/{id}/nudges``, and answer only what a page
may know: whether its event was taken, the nudge waiting on its own cart, and that its reply was
taken. No contact, customer, message history or configuration ever leaves through here.
"""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import select

from api.client_access import (
    ALLOWED_HEADERS,
    ALLOWED_METHODS,
    PREFLIGHT_MAX_AGE,
    CheckedKeyDep,
    ClientCaller,
    ClientDep,
)
from api.deps import CartRelayDep, EventWriterDep, SessionDep, SettingsDep, TemporalClientDep
from api.metrics import EVENTS, observe_signals
from winback.carts.client_events import (
    ClientEventIn,
    ClientNudgeReplyIn,
    to_cart_event,
)
from winback.carts.events import CART_ID_PATTERN, CartEventIn, RecordedEvent, store_event
from winback.carts.fast_events import (
    NotOwned,
    needs_workflow,
)
from winback.carts.models import Cart
from winback.carts.nudges import pending_nudges
from winback.carts.relay import queue_from_row, tell_or_queue
from winback.customers.identity import normalize_national_phone
from winback.customers.phones import normalize_phone
from winback.customers.signed_identity import identity_secret
from winback.platform.logs import bind_now

router = APIRouter(prefix="/v1/client", tags=["client (publishable key)"])
CartId = Annotated[str, Path(pattern=CART_ID_PATTERN, description="The storefront's cart id.")]


class ClientEventAccepted(BaseModel):
    cart_id: str
    duplicate: bool
    identity: Literal["signed", "unsigned", "none"] = Field(
        description="`unsigned`: some contact fields had no valid signature and were ignored."
    )
    ignored: list[str] = Field(description="Identity fields ignored for want of a signature.")


class ClientNudge(BaseModel):
    id: int
    message: str = Field(description="Rendered from the retailer's `onsite_help` template.")
    offer: list[str] = Field(description="What the shopper may choose: `chat`, `callback`.")


class ClientNudgeState(BaseModel):
    nudge: ClientNudge | None


class ClientNudgeReplied(BaseModel):
    reply: str
    callback_requested: bool


async def _cart(session: SessionDep, retailer_id: str, cart_id: str) -> Cart | None:
    query = select(Cart).where(Cart.retailer_id == retailer_id, Cart.cart_id == cart_id)
    return (await session.exec(query)).first()


async def _record(
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    settings: SettingsDep,
    caller: ClientCaller,
    cart_id: str,
    event: CartEventIn,
    callback_phone: str | None = None,
) -> bool:
    """The same steps as the retailer's event route, plus the cart's owner; returns duplicate."""
    started = time.perf_counter()

    def remember_visitor(recorded: RecordedEvent) -> None:
        cart = recorded.cart
        cart.visitor_hash = cart.visitor_hash or caller.visitor_hash
        if callback_phone is not None and not recorded.duplicate:
            cart.callback_phone = callback_phone
        session.add(cart)

    recorded = await store_event(
        session, retailer=caller.retailer, cart_id=cart_id, event=event, also=remember_visitor
    )
    actions = await tell_or_queue(
        session,
        client,
        relay,
        task_queue=settings.task_queue,
        retailer=caller.retailer,
        cart=recorded.cart,
        since=started,
    )
    observe_signals(actions, started)
    return recorded.duplicate


async def _record_batched(
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    writer: EventWriterDep,
    settings: SettingsDep,
    caller: ClientCaller,
    cart_id: str,
    event: CartEventIn,
) -> bool:
    """``_record`` through the event writer (``winback.carts.event_writer``): ownership is
    checked (and the cart claimed) in the same transaction as the write; returns duplicate."""
    started = time.perf_counter()
    bind_now(retailer_id=caller.retailer.id, cart_id=cart_id)
    normalize_national_phone(event.customer, caller.retailer.country)
    try:
        written = await writer.record(
            caller.retailer, cart_id, event, visitor_hash=caller.visitor_hash
        )
    except NotOwned:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no cart {cart_id!r} for this browser"
        ) from None
    EVENTS.labels("client", "duplicate" if written.duplicate else "stored").inc()
    if not needs_workflow(written.cart):
        return written.duplicate
    actions = queue_from_row(relay, caller.retailer, written.cart, started)
    if actions is None:
        cart = await session.get(Cart, written.cart.id)
        assert cart is not None
        actions = await tell_or_queue(
            session,
            client,
            relay,
            task_queue=settings.task_queue,
            retailer=caller.retailer,
            cart=cart,
            since=started,
        )
    observe_signals(actions, started)
    return written.duplicate


@router.post(
    "/carts/{cart_id}/events",
    response_model=ClientEventAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
async def post_client_event(
    cart_id: CartId,
    event: ClientEventIn,
    caller: ClientDep,
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    writer: EventWriterDep,
    settings: SettingsDep,
) -> ClientEventAccepted:
    """A storefront event from the shopper's browser (items, page views, `idle`,
    `exit_intent`, `checkout_started`; never orders). Contact fields count only with a valid
    signature from the retailer's backend; the rest are ignored and listed in `ignored`."""
    secret = None
    if event.identity is not None:
        secret = await identity_secret(session, retailer_id=caller.retailer.id, settings=settings)
        await session.commit()  # the writer's transaction is its own
    try:
        cart_event, trusted = to_cart_event(event, secret, event_prefix=caller.event_prefix)
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", "identity", *e["loc"])} for e in err.errors()]
        ) from None
    duplicate = await _record_batched(
        session, client, relay, writer, settings, caller, cart_id, cart_event
    )
    identity: Literal["signed", "unsigned", "none"] = "none"
    if trusted is not None and trusted.dropped:
        identity = "unsigned"
    elif trusted is not None and trusted.has_contact:
        identity = "signed"
    return ClientEventAccepted(
        cart_id=cart_id,
        duplicate=duplicate,
        identity=identity,
        ignored=trusted.dropped if trusted else [],
    )


@router.get("/carts/{cart_id}/nudge", response_model=ClientNudgeState)
async def read_client_nudge(
    cart_id: CartId, caller: ClientDep, session: SessionDep
) -> ClientNudgeState:
    """The nudge the cart's workflow offers, if one is waiting. A cart this browser does not
    own answers exactly like a cart with no nudge."""
    cart = await _cart(session, caller.retailer.id, cart_id)
    if cart is None or cart.visitor_hash != caller.visitor_hash:
        return ClientNudgeState(nudge=None)
    nudges = await pending_nudges(session, retailer_id=caller.retailer.id, cart_id=cart_id)
    if not nudges:
        return ClientNudgeState(nudge=None)
    latest = nudges[-1]
    assert latest.id is not None
    offer = [o for o in (latest.offer or "").split(",") if o]
    return ClientNudgeState(nudge=ClientNudge(id=latest.id, message=latest.body, offer=offer))


@router.post("/carts/{cart_id}/nudge/reply", response_model=ClientNudgeReplied)
async def reply_client_nudge(
    cart_id: CartId,
    body: ClientNudgeReplyIn,
    caller: ClientDep,
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    settings: SettingsDep,
) -> ClientNudgeReplied:
    """The shopper's answer to the nudge. `callback` needs the number to call and the
    shopper's consent; it opens an agent task with the cart attached. The number is used for
    that call only: it never becomes the customer's contact for automated messages."""
    cart = await _cart(session, caller.retailer.id, cart_id)
    nudges = (
        await pending_nudges(session, retailer_id=caller.retailer.id, cart_id=cart_id)
        if cart is not None and cart.visitor_hash == caller.visitor_hash
        else []
    )
    if not nudges:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "no nudge is waiting for a reply on this cart"
        )
    phone = None
    if body.reply == "callback":
        problems = []
        if not body.phone:
            problems.append(("phone", "a callback needs the number to call"))
        else:
            try:
                phone = normalize_phone(body.phone, caller.retailer.country)
            except ValueError as err:
                problems.append(("phone", str(err)))
        if not body.consent:
            problems.append(("consent", "the shopper must agree to be called"))
        if problems:
            raise RequestValidationError(
                [{"loc": ("body", f), "msg": m, "type": "value_error"} for f, m in problems]
            )
    event = CartEventIn(
        event_id=f"{caller.event_prefix}:reply-{nudges[-1].id}",
        type="nudge_reply",
        reply=body.reply,
    )
    await _record(session, client, relay, settings, caller, cart_id, event, callback_phone=phone)
    return ClientNudgeReplied(reply=body.reply, callback_requested=body.reply == "callback")


@router.options("/{rest:path}", include_in_schema=False)
async def preflight(key: CheckedKeyDep) -> Response:
    """CORS preflight: allowed only for the key's origins (``checked_key`` refuses the rest)."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        },
    )
