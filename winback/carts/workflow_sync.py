"""Starting and signalling cart workflows: the only place the API touches Temporal for carts.

Each change is sent, then its flag is set on the cart row, so a failed call is simply re-driven by
the next request (or a resend of the same event). Every call is idempotent on Temporal's side:
the start uses the business-key workflow ID with USE_EXISTING, and a signal to a workflow that
has already finished is a no-op for us, except a callback request: the journey ends after its
last step now, and a shopper who asks to be called back later is still called (``_callback``).
"""

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from winback.carts.cadence import to_workflow_spec
from winback.carts.cadence_store import DEFAULT_VERSION, cadence_version, current_cadence_cached
from winback.carts.events import (
    STORE_ATTEMPTS,
    has_contact,
    pending_changes,
)
from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.platform.db import is_write_conflict, sqlite_writer
from winback.retailers.lookups import RetailerIdentity
from winback.retailers.models import Retailer
from workflows import search_attributes as sa
from workflows.carts.cart_recovery import CartRecoveryWorkflow
from workflows.carts.types import (
    CallbackRequested,
    CartRecoveryInput,
    NudgeTrigger,
    OptedOut,
    OrderPlaced,
)
from workflows.vocabulary import Stage


def cart_workflow_id(retailer_id: str, cart_id: str) -> str:
    return f"cart-{retailer_id}-{cart_id}"


async def tell_workflow(
    session: AsyncSession,
    client: Client,
    *,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
) -> list[str]:
    """``apply_pending_changes`` and commit the flags it set. When a concurrent request for
    the same cart committed first (SQLite refuses our write then), the cart is read again and
    what is still pending is re-driven: every start and signal is safe to repeat."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            actions = await apply_pending_changes(
                session,
                client,
                task_queue=task_queue,
                retailer=retailer,
                cart=cart,
                end_reads_before_calls=True,
            )
            async with sqlite_writer(session):
                await session.commit()
            return actions
        except (IntegrityError, OperationalError) as err:
            await session.rollback()
            if attempt == STORE_ATTEMPTS or not is_write_conflict(err):
                raise
            if isinstance(retailer, Retailer) and retailer in session:
                await session.refresh(retailer)
            await session.refresh(cart)
    raise AssertionError("unreachable")


async def apply_pending_changes(
    session: AsyncSession,
    client: Client,
    *,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
    end_reads_before_calls: bool = False,
) -> list[str]:
    """Tells the cart's workflow what it has not heard yet; returns what was done.

    ``end_reads_before_calls``: commit the (read-only) transaction before calling Temporal, so
    the flags are written later in a transaction that starts with its write. On SQLite a read
    held across a start or a signal went stale as soon as another request wrote, and the write
    that followed was refused ("database is locked"), re-driving the whole call. Only for a
    caller with nothing else pending in the session (``tell_workflow``: the event is committed
    already); the factory keeps objects loaded across a commit (``expire_on_commit=False``)."""
    # Once the workflow knows the contact, a minor edit needs no read of the customer.
    known = cart.workflow_started and cart.contact_signalled
    customer = (
        await session.get(Customer, cart.customer_id) if cart.customer_id and not known else None
    )
    changes = pending_changes(cart, contact=has_contact(customer))
    if not changes.any:
        return []
    workflow_id = cart_workflow_id(retailer.id, cart.cart_id)
    if changes.start:
        await _start(session, client, task_queue, retailer, cart, customer, end_reads_before_calls)
        return ["started"] + (["nudge_trigger"] if changes.nudge_reason else [])

    if end_reads_before_calls:
        await session.commit()
    handle = client.get_workflow_handle_for(CartRecoveryWorkflow.run, workflow_id)
    done: list[str] = []
    if changes.order:
        await _signal(
            handle.signal(
                CartRecoveryWorkflow.order_placed,
                OrderPlaced(order_id=cart.order_id or "", value=cart.order_value or 0.0),
            )
        )
        cart.order_signalled = True
        done.append("order_placed")
    if changes.opt_out:
        await _signal(handle.signal(CartRecoveryWorkflow.opted_out, OptedOut()))
        cart.opt_out_signalled = True
        done.append("opted_out")
    if changes.contact_known and not (changes.order or changes.opt_out):
        await _signal(handle.signal(CartRecoveryWorkflow.contact_known))
        done.append("contact_known")
    cart.contact_signalled = cart.contact_signalled or changes.contact_known
    if changes.nudge_reason and not (changes.order or changes.opt_out):
        await _signal(
            handle.signal(CartRecoveryWorkflow.nudge_trigger, NudgeTrigger(changes.nudge_reason))
        )
        done.append("nudge_trigger")
    cart.nudge_signalled = cart.nudge_signalled or bool(changes.nudge_reason)
    if changes.callback and not (changes.order or changes.opt_out):
        done.append(
            await _callback(
                session, client, task_queue, retailer, cart, workflow_id, end_reads_before_calls
            )
        )
    cart.callback_signalled = cart.callback_signalled or changes.callback
    session.add(cart)
    return done


async def _start(
    session: AsyncSession,
    client: Client,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
    customer: Customer | None,
    end_reads_before_calls: bool = False,
) -> None:
    start = await prepare_start(
        session, client, task_queue=task_queue, retailer=retailer, cart=cart, customer=customer
    )
    if end_reads_before_calls:
        await session.commit()
    await start.send()
    start.mark_started()
    session.add(cart)


@dataclass
class PreparedStart:
    """A cart workflow's start, ready to send: ``send`` it, then ``mark_started`` the row
    (the caller commits the flags)."""

    cart: Cart
    send: Callable[[], Coroutine[Any, Any, None]]
    mark_started: Callable[[], None]


async def prepare_start(
    session: AsyncSession,
    client: Client,
    *,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
    customer: Customer | None,
) -> PreparedStart:
    """Everything a cart's start needs from the database (its cadence, from the per-process
    cache), read now, so that several starts can then be sent at once with no read between."""
    cadence = await current_cadence_cached(session, retailer_id=retailer.id)
    contact = has_contact(customer)
    changes = pending_changes(cart, contact=contact)
    workflow_id = cart_workflow_id(retailer.id, cart.cart_id)
    assert cart.last_activity_at is not None
    workflow_input = CartRecoveryInput(
        retailer_id=retailer.id,
        cart_id=cart.cart_id,
        cadence=to_workflow_spec(cadence, cadence.version),
        last_activity_at=cart.last_activity_at,
        has_contact=contact,
        cart_value=cart.value,
    )
    signal: dict[str, Any] = {}
    if changes.nudge_reason:
        signal = {
            "start_signal": CartRecoveryWorkflow.nudge_trigger.__name__,
            "start_signal_args": [NudgeTrigger(changes.nudge_reason)],
        }
    summary = (
        f"Cart {cart.cart_id} of {retailer.name}: {len(cart.items)} items, "
        f"{cart.currency} {cart.value:.2f}, cadence v{cadence.version}"
    )
    search_attributes = TypedSearchAttributes(
        [
            SearchAttributePair(sa.RETAILER, retailer.id),
            SearchAttributePair(sa.STAGE, Stage.ACTIVE),
            SearchAttributePair(sa.CART_VALUE, cart.value),
        ]
    )

    async def send() -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            # Already started and finished: nothing more to do for this cart.
            await client.start_workflow(
                CartRecoveryWorkflow.run,
                workflow_input,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes,
                static_summary=summary,
                **signal,
            )

    def mark_started() -> None:
        cart.workflow_started = True
        cart.workflow_id = workflow_id
        cart.cadence_version = cadence.version
        cart.contact_signalled = contact
        cart.nudge_signalled = bool(changes.nudge_reason)

    return PreparedStart(cart=cart, send=send, mark_started=mark_started)


async def _callback(
    session: AsyncSession,
    client: Client,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
    workflow_id: str,
    end_reads_before_calls: bool,
) -> str:
    """Signals the callback request; if the journey has ended (it does after its last step),
    starts a run of its own for the same workflow id that only carries out the callback.

    The start allows a duplicate id (only this start does) and delivers the request as its
    start signal; if a callback run is already going (a concurrent request got there first),
    USE_EXISTING hands it the signal instead."""
    handle = client.get_workflow_handle_for(CartRecoveryWorkflow.run, workflow_id)
    try:
        await handle.signal(CartRecoveryWorkflow.callback_requested, CallbackRequested())
        return "callback_requested"
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    stored = await cadence_version(
        session, retailer_id=retailer.id, version=cart.cadence_version or DEFAULT_VERSION
    )
    cadence = stored or await current_cadence_cached(session, retailer_id=retailer.id)
    if end_reads_before_calls:
        await session.commit()
    assert cart.last_activity_at is not None
    await client.start_workflow(
        CartRecoveryWorkflow.run,
        CartRecoveryInput(
            retailer_id=retailer.id,
            cart_id=cart.cart_id,
            cadence=to_workflow_spec(cadence, cadence.version),
            last_activity_at=cart.last_activity_at,
            has_contact=True,
            cart_value=cart.value,
            callback_only=True,
        ),
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal=CartRecoveryWorkflow.callback_requested.__name__,
        start_signal_args=[CallbackRequested()],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.RETAILER, retailer.id),
                SearchAttributePair(sa.CART_VALUE, cart.value),
            ]
        ),
        static_summary=f"Callback for cart {cart.cart_id} of {retailer.name}, after its journey",
    )
    return "callback_started"


async def _signal(call: Awaitable[None]) -> None:
    """Awaits a signal; a workflow that already finished needs no more news."""
    try:
        await call
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


__all__ = [
    "PreparedStart",
    "WorkflowHandle",
    "apply_pending_changes",
    "cart_workflow_id",
    "prepare_start",
    "tell_workflow",
]
