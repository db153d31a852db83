"""Starting cart workflows off the request path: a per-process relay in front of Temporal.

Why: a first event (a new cart with a contact, or an anonymous cart's first nudge trigger) used
to wait for ``start_workflow`` before its 202. The Temporal server starts workflows at a small
fraction of the rate the API stores events, so that round trip, not the database, set the
ingestion rate. The cart row is already the outbox: once the event is committed its flags
(``workflow_started``, ``*_signalled``) say what the workflow has not heard, and whoever reads
them next can tell it (``tell_workflow`` decides from the flags alone, every call idempotent).
So the route commits, hands the cart's key to this relay and answers; the relay tells the
workflow in the background, a few carts at a time.

Nothing is lost when the relay does not run a hand-over: the API crashed after the 202, it was
stopping, its queue was full, or Temporal refused. The flags stay unsaid and the worker's sweep
(``winback.carts.redrive``) tells the workflow within its interval (plus a grace after the cart's
last event). A full queue is left to that sweep rather than told inline on purpose: the queue
fills only when Temporal starts workflows slower than carts arrive, and a request that then made
its own start would add to the very load that is behind, slowing every request for nothing the
sweep does not do anyway.

What goes through the relay (``tell_or_queue``): every change to a cart whose workflow has not
started, so the start and whatever the cart's later events add (a nudge trigger, an order, an
opt-out) are one ``tell_workflow`` of the latest flags. A cart already started is told inline,
as before: its signals (order placed, opted out, contact known, nudge, callback) are cheap, and
a route that stops a journey answers only once the workflow heard it.

Several hand-overs of one cart are coalesced: a cart waiting in the queue is there once, and a
cart whose tell is running is told once more after it (its new event may have set a flag after
the running tell read them). No cart is ever told by two of the relay's tasks at once.
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from winback.carts.events import has_contact, pending_changes
from winback.carts.fast_events import CartRow
from winback.carts.models import Cart
from winback.carts.workflow_sync import PreparedStart, prepare_start, tell_workflow
from winback.customers.models import Customer
from winback.platform.db import SessionFactory, sqlite_writer
from winback.platform.logs import bind
from winback.retailers.lookups import RetailerIdentity

log = logging.getLogger(__name__)

QUEUED = "queued"  # the action a route reports for a cart handed to the relay


class RelayObserver(Protocol):
    """Where the relay reports what it did (the API's Prometheus metrics)."""

    def told(self, actions: list[str], since: float) -> None:
        """A tell went through: ``actions`` as ``tell_workflow`` returned them (empty: nothing
        was pending any more), ``since`` the ``time.perf_counter()`` of the oldest event it
        covered."""

    def left_to_sweep(self, reason: str) -> None:
        """A hand-over the relay did not tell (``full``, ``stopped`` or ``failed``)."""


@dataclass
class _Entry:
    retailer: RetailerIdentity
    since: float  # perf_counter of the oldest hand-over this tell covers
    # The handing request's context (its trace span, its log fields): the tell runs in it, so
    # the workflow start is still part of the request's trace.
    context: contextvars.Context


class CartRelay:
    """Tells cart workflows what their carts' flags say, in ``concurrency`` background tasks,
    each taking up to ``batch`` waiting carts at a time (one read, the starts side by side, one
    write of the flags).

    ``submit`` is synchronous and never waits: the request that calls it has committed and is
    about to answer. ``start`` and ``stop`` belong to the app's lifespan (a relay not started
    yet holds what it is handed; a stopped one refuses); ``drain`` waits until everything
    handed over so far has been told (tests, a graceful stop)."""

    def __init__(
        self,
        sessions: SessionFactory,
        client: Client,
        *,
        task_queue: str,
        concurrency: int = 8,
        batch: int = 16,
        max_queued: int = 10_000,
        observer: RelayObserver | None = None,
    ) -> None:
        if concurrency < 1 or max_queued < 1 or batch < 1:
            raise ValueError("the relay needs at least one task and room for one cart")
        self._sessions = sessions
        self._client = client
        self._task_queue = task_queue
        self._concurrency = concurrency
        self._batch = batch
        self._max_queued = max_queued
        self._observer = observer
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: dict[int, _Entry] = {}  # in the queue, not yet taken
        self._running: dict[int, _Entry] = {}  # being told now
        self._again: dict[int, _Entry] = {}  # handed over again while being told
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True
        self._full_logged = False

    @property
    def depth(self) -> int:
        """Carts handed over and not yet told (waiting or being told)."""
        return len(self._waiting) + len(self._running)

    def oldest_age(self) -> float:
        """Seconds since the oldest hand-over not yet told (0 when idle): the relay's lag."""
        entries = [*self._waiting.values(), *self._running.values(), *self._again.values()]
        if not entries:
            return 0.0
        return time.perf_counter() - min(e.since for e in entries)

    def submit(self, retailer: RetailerIdentity, cart_pk: int, since: float) -> bool:
        """Hands over a cart whose event is committed; False if the relay will not tell it
        (stopped, or full), which leaves it to the worker's sweep. ``since``: the event's
        ``time.perf_counter()`` at arrival, for the lag metrics."""
        if not self._accepting:
            self._left_to_sweep("stopped")
            return False
        if cart_pk in self._waiting:  # one tell reads the latest flags for both events
            return True
        if cart_pk in self._running:
            self._again.setdefault(cart_pk, _Entry(retailer, since, contextvars.copy_context()))
            return True
        if len(self._waiting) >= self._max_queued:
            if not self._full_logged:  # once per overload, not once per cart
                log.warning(
                    "cart relay full (%d carts waiting): new carts are left to the worker's "
                    "sweep until it catches up",
                    len(self._waiting),
                )
                self._full_logged = True
            self._left_to_sweep("full")
            return False
        self._waiting[cart_pk] = _Entry(retailer, since, contextvars.copy_context())
        self._queue.put_nowait(cart_pk)
        return True

    def start(self) -> None:
        """Starts the background tasks (the app's startup)."""
        self._accepting = True
        while len(self._tasks) < self._concurrency:
            self._tasks.append(asyncio.create_task(self._work(), name="cart-relay"))

    async def drain(self) -> None:
        """Returns once every cart handed over so far (and re-handed meanwhile) is told."""
        await self._queue.join()

    async def stop(self, *, drain_for: float = 5.0) -> None:
        """Stops taking carts, tells what is queued for up to ``drain_for`` seconds, then
        cancels the rest: their flags are unsaid, so the worker's sweep tells them."""
        self._accepting = False
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), timeout=drain_for)
        left = self.depth
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if left:
            log.warning(
                "cart relay stopped with %d carts untold: the worker's sweep tells them", left
            )
            for _ in range(left):
                self._left_to_sweep("stopped")
        self._waiting.clear()
        self._running.clear()
        self._again.clear()
        self._queue = asyncio.Queue()

    async def _work(self) -> None:
        while True:
            taken = [await self._queue.get()]
            while len(taken) < self._batch and not self._queue.empty():
                taken.append(self._queue.get_nowait())
            entries: dict[int, _Entry] = {}
            for cart_pk in taken:
                entries[cart_pk] = self._running[cart_pk] = self._waiting.pop(cart_pk)
            if self._full_logged and len(self._waiting) < self._max_queued // 2:
                self._full_logged = False
            try:
                await self._tell_many(entries)
            finally:
                for cart_pk in taken:
                    del self._running[cart_pk]
                    again = self._again.pop(cart_pk, None)
                    if again is not None:  # even while stopping: ``stop`` drains it or counts it
                        self._waiting[cart_pk] = again
                        self._queue.put_nowait(cart_pk)  # before task_done: drain waits for it
                    self._queue.task_done()

    async def _tell_many(self, entries: dict[int, _Entry]) -> None:
        """The carts' starts with one read of their rows and one write of their flags, the
        start calls sent side by side (each in its request's context: its trace, its log
        fields). A cart that needs more than a start (a signal, a callback), or a batch that
        fails as a whole, is told one cart at a time (``_tell``)."""
        one_by_one = dict(entries)
        started: list[tuple[PreparedStart, _Entry]] = []
        try:
            async with self._sessions() as session:
                carts = (
                    await session.exec(select(Cart).where(col(Cart.id).in_(list(entries))))
                ).all()
                customer_ids = [c.customer_id for c in carts if c.customer_id is not None]
                if customer_ids:  # into the session's identity map, for the reads below
                    await session.exec(select(Customer).where(col(Customer.id).in_(customer_ids)))
                prepared: list[tuple[PreparedStart, _Entry]] = []
                for cart in carts:
                    assert cart.id is not None
                    entry = entries[cart.id]
                    customer = (
                        await session.get(Customer, cart.customer_id) if cart.customer_id else None
                    )
                    changes = pending_changes(cart, contact=has_contact(customer))
                    if not changes.start or changes.callback:
                        continue  # told one by one below (or nothing is pending any more)
                    start = await prepare_start(
                        session,
                        self._client,
                        task_queue=self._task_queue,
                        retailer=entry.retailer,
                        cart=cart,
                        customer=customer,
                    )
                    prepared.append((start, entry))
                    del one_by_one[cart.id]
                await session.commit()  # no read held across the calls (see tell_workflow)
                sent = await asyncio.gather(
                    *(
                        asyncio.create_task(start.send(), context=entry.context)
                        for start, entry in prepared
                    ),
                    return_exceptions=True,
                )
                for (start, entry), outcome in zip(prepared, sent, strict=True):
                    if isinstance(outcome, BaseException):
                        self._failed(start.cart.cart_id, start.cart.id, entry, outcome)
                    else:
                        start.mark_started()
                        session.add(start.cart)
                        started.append((start, entry))
                async with sqlite_writer(session):
                    await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the flags were not written: the tells are repeated safely
            log.info("cart relay: a batch of %d carts is told one by one (%s)", len(entries), err)
            one_by_one = dict(entries)
            started = []
        if self._observer is not None:
            for start, entry in started:
                actions = ["started"] + (["nudge_trigger"] if start.cart.nudge_signalled else [])
                self._observer.told(actions, entry.since)
        for cart_pk, entry in one_by_one.items():
            await asyncio.create_task(self._tell(cart_pk, entry), context=entry.context)

    async def _tell(self, cart_pk: int, entry: _Entry) -> None:
        retailer = entry.retailer
        cart_id: str | None = None
        try:
            async with self._sessions() as session:
                cart = await session.get(Cart, cart_pk)
                if cart is None:  # erased meanwhile: nothing to tell
                    return
                cart_id = cart.cart_id
                with bind(retailer_id=retailer.id, cart_id=cart_id):
                    actions = await tell_workflow(
                        session,
                        self._client,
                        task_queue=self._task_queue,
                        retailer=retailer,
                        cart=cart,
                    )
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the relay must outlive any one cart; the sweep retries it
            self._failed(cart_id, cart_pk, entry, err)
            return
        if self._observer is not None:
            self._observer.told(actions, entry.since)

    def _failed(
        self, cart_id: str | None, cart_pk: int | None, entry: _Entry, err: BaseException
    ) -> None:
        log.warning(
            "cart relay could not tell the workflow of cart %s (the worker's sweep "
            "re-drives it): %s: %s",
            cart_id or cart_pk,
            type(err).__name__,
            err,
            extra={"retailer_id": entry.retailer.id, "cart_id": cart_id, "cart_pk": cart_pk},
        )
        self._left_to_sweep("failed")

    def _left_to_sweep(self, reason: str) -> None:
        if self._observer is not None:
            self._observer.left_to_sweep(reason)


def queue_from_row(
    relay: CartRelay, retailer: RetailerIdentity, cart: CartRow, since: float
) -> list[str] | None:
    """``tell_or_queue``'s answer for a cart that a batch just wrote (``fast_events``), decided
    from the row it returned, with no read: ``["queued"]`` or ``[]``. None when the row cannot
    tell: a started workflow is told inline, and a customer the batch did not read may have a
    contact (then ``tell_or_queue`` on the ORM row decides)."""
    if cart.workflow_started:
        return None
    starts = cart.starts_workflow
    if starts is None:
        return None
    if not starts:
        return []
    relay.submit(retailer, cart.id, since)
    return [QUEUED]


async def tell_or_queue(
    session: AsyncSession,
    client: Client,
    relay: CartRelay,
    *,
    task_queue: str,
    retailer: RetailerIdentity,
    cart: Cart,
    since: float,
) -> list[str]:
    """What an event route does once its event is committed: a cart whose workflow has not
    started, and now has what starts one, is handed to the relay (``["queued"]``); a started
    one is told inline (``tell_workflow``: the signals it sent). ``[]``: nothing to tell."""
    if cart.workflow_started:
        return await tell_workflow(
            session, client, task_queue=task_queue, retailer=retailer, cart=cart
        )
    customer = await session.get(Customer, cart.customer_id) if cart.customer_id else None
    if not pending_changes(cart, contact=has_contact(customer)).start:
        return []
    assert cart.id is not None
    relay.submit(retailer, cart.id, since)
    return [QUEUED]
