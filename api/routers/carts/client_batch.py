"""``POST /v1/client/events:batch``: many storefront events, of many carts, in one request.

What a browser sends when a page goes away (``navigator.sendBeacon``), or a storefront's server
that buffers its shoppers' events. ``sendBeacon`` can set no header, so the request is
CORS-simple: the publishable key in the query string like every client route, the browser's id
(``visitor``) in the body, and the body JSON sent as ``text/plain`` (``application/json`` is
taken too). Each event is what ``POST /v1/client/carts/{id}/events`` takes, plus its
``cart_id``, and gets the same treatment: the same validation, the same per-visitor event ids
and cart ownership, the same dedupe, ordering and snapshot rules (in body order), stored in one
transaction committed before the answer; then the workflows of the carts whose course changed
are signalled, or their starts queued with the relay (``winback.carts.relay``), as the single
route does. The answer lists each event's outcome:
``stored``, ``duplicate`` or ``rejected`` with the reason; a bad event does not spoil the rest.
"""

import json
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from temporalio.service import RPCError

from api.client_access import (
    CheckedKeyDep,
    ClientCaller,
    check_client_rate,
    checked_visitor,
)
from api.deps import CartRelayDep, SessionDep, SettingsDep, TemporalClientDep
from api.metrics import EVENTS, observe_signals
from winback.carts.client_events import ClientEventIn, to_cart_event
from winback.carts.events import CART_ID_PATTERN, CartEventIn
from winback.carts.fast_events import CartRow, commit_with_retries, needs_workflow, record_batch
from winback.carts.models import Cart
from winback.carts.relay import queue_from_row, tell_or_queue
from winback.customers.identity import normalize_national_phone
from winback.customers.signed_identity import identity_secret
from winback.platform.errors import InputFieldError
from winback.platform.logs import bind

router = APIRouter(prefix="/v1/client", tags=["client (publishable key)"])
log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 500
CONTENT_TYPES = ("application/json", "text/plain")


class ClientBatchEventIn(ClientEventIn):
    cart_id: str = Field(pattern=CART_ID_PATTERN, max_length=128)


class ClientBatchIn(BaseModel):
    """The body, as JSON (``Content-Type: text/plain`` or ``application/json``)."""

    model_config = ConfigDict(extra="forbid")

    visitor: str = Field(
        min_length=16, max_length=128, description="The browser's first-party id (winback.js)."
    )
    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]


class BatchEventResult(BaseModel):
    index: int = Field(description="The event's position in `events`.")
    cart_id: str | None
    event_id: str | None
    outcome: Literal["stored", "duplicate", "rejected"]
    reason: str | None = Field(default=None, description="Why it was rejected.")


class BatchAccepted(BaseModel):
    stored: int
    duplicate: int
    rejected: int
    results: list[BatchEventResult]


_EVENT = TypeAdapter(ClientBatchEventIn)
# The body is parsed here (FastAPI parses only application/json), so its schema is declared by
# hand: one event is the single client route's event plus cart_id, whose parts (CartItem,
# ClientIdentity, ConsentIn) are in the document's components through that route.
_EVENT_SCHEMA = ClientBatchEventIn.model_json_schema(ref_template="#/components/schemas/{model}")
_EVENT_SCHEMA.pop("$defs", None)
_BODY_SCHEMA = {
    "type": "object",
    "required": ["visitor", "events"],
    "additionalProperties": False,
    "properties": {
        "visitor": {"type": "string", "minLength": 16, "maxLength": 128},
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_EVENTS,
            "items": _EVENT_SCHEMA,
        },
    },
}


def _reason(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


async def _body(request: Request) -> ClientBatchIn:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the batch as JSON, with Content-Type text/plain or application/json",
        )
    try:
        raw = json.loads(await request.body())
    except ValueError:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the body is not JSON", "type": "json_invalid"}]
        ) from None
    try:
        return ClientBatchIn.model_validate(raw)
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
        ) from None


@router.post(
    "/events:batch",
    response_model=BatchAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {kind: {"schema": _BODY_SCHEMA} for kind in CONTENT_TYPES},
        }
    },
    responses={415: {"description": "Not JSON (text/plain or application/json)"}},
)
async def post_client_batch(
    request: Request,
    key: CheckedKeyDep,
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    settings: SettingsDep,
) -> BatchAccepted:
    """Up to 500 events of one browser's carts in one request, as `navigator.sendBeacon`
    sends them (`text/plain` JSON, no custom header: no CORS preflight). Each event is
    answered on its own: `stored`, `duplicate` (its id was seen) or `rejected` with the reason;
    the stored ones are committed before this answer. The request counts once against the
    key's rate limits."""
    started = time.perf_counter()
    check_client_rate(request, key)
    body = await _body(request)
    visitor = checked_visitor(body.visitor, ("body", "visitor"))
    caller = ClientCaller(key=key, retailer=key.retailer, visitor=visitor)
    results: list[BatchEventResult] = []
    valid: list[tuple[int, ClientBatchEventIn]] = []
    for index, raw in enumerate(body.events):
        try:
            valid.append((index, _EVENT.validate_python(raw)))
        except ValidationError as err:
            results.append(
                BatchEventResult(
                    index=index,
                    cart_id=_text(raw.get("cart_id")),
                    event_id=_text(raw.get("event_id")),
                    outcome="rejected",
                    reason=_reason(err),
                )
            )
    secret = None
    if any(event.identity is not None for _, event in valid):
        secret = await identity_secret(session, retailer_id=key.retailer.id, settings=settings)
        await session.commit()  # the batch's transaction starts with its first write
    cart_events: list[tuple[int, str, CartEventIn]] = []
    for index, event in valid:
        try:
            cart_event, _ = to_cart_event(event, secret, event_prefix=caller.event_prefix)
            normalize_national_phone(cart_event.customer, caller.retailer.country)
        except ValidationError as err:  # a signed email or phone that is not one
            reason = f"identity: {_reason(err)}"
        except InputFieldError as err:  # a signed national number the store's country rejects
            reason = f"identity: {err.field}: {err}"
        else:
            cart_events.append((index, event.cart_id, cart_event))
            continue
        results.append(
            BatchEventResult(
                index=index,
                cart_id=event.cart_id,
                event_id=event.event_id,
                outcome="rejected",
                reason=reason,
            )
        )

    async def store() -> tuple[list[BatchEventResult], list[CartRow]]:
        """Every event at once, in set statements (``fast_events.record_batch``)."""
        recorded = await record_batch(
            session,
            retailer=caller.retailer,
            events=[(cart_id, event) for _, cart_id, event in cart_events],
            visitors=[caller.visitor_hash] * len(cart_events),
        )
        done = [
            BatchEventResult(
                index=index,
                cart_id=cart_id,
                event_id=event.event_id,
                outcome=outcome.outcome,  # type: ignore[arg-type]
                reason=outcome.reason,
            )
            for (index, cart_id, event), outcome in zip(cart_events, recorded.outcomes, strict=True)
        ]
        return done, [cart for cart in recorded.touched if needs_workflow(cart)]

    stored, to_tell = await commit_with_retries(session, store) if cart_events else ([], [])
    results = sorted(results + stored, key=lambda r: r.index)
    counts = {o: sum(r.outcome == o for r in results) for o in ("stored", "duplicate", "rejected")}
    for outcome, count in counts.items():
        if count:
            EVENTS.labels("batch", outcome).inc(count)
    for cart in to_tell:
        if queue_from_row(relay, caller.retailer, cart, started) is None:
            await _tell(session, client, relay, settings, caller, cart.id, started)
    return BatchAccepted(**counts, results=results)


async def _tell(
    session: SessionDep,
    client: TemporalClientDep,
    relay: CartRelayDep,
    settings: SettingsDep,
    caller: ClientCaller,
    cart_pk: int,
    started: float,
) -> None:
    """Queues one cart's workflow start with the relay, or signals its started workflow. The
    events are stored already: if Temporal is unreachable now, the worker's re-driver
    (``winback.carts.redrive``) tells it later, so one cart's failure neither fails the batch
    nor stops the others."""
    cart = await session.get(Cart, cart_pk)
    if cart is None:
        return
    cart_id = cart.cart_id
    try:
        with bind(retailer_id=caller.retailer.id, cart_id=cart_id):
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
    except RPCError as err:
        await session.rollback()
        log.warning(
            "batch: could not tell the workflow of cart %s (re-driven later): %s",
            cart_id,
            err,
            extra={"retailer_id": caller.retailer.id, "cart_id": cart_id},
        )


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None
