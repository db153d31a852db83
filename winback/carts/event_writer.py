"""Group commit for single storefront events: the events that arrive together are stored together.

Why: a page view or a cart edit is a few small statements, but each transaction also pays its
``BEGIN`` and ``COMMIT`` (a write to disk), a connection checkout and, on SQLite, a turn at the
one write lock; with aiosqlite every statement is also a hop to the connection's thread and back
through an event loop that is busy with the other requests. Under load a request spent most of
its time waiting for the lock while the writer ahead of it waited for the event loop. Here the
requests of one process queue their events; one writer takes everything queued and stores it in
one transaction with the beacon batch's set statements (``fast_events.record_batch``),
then answers every request. The more requests arrive at once, the more each transaction
carries; a lone request is written at once, with no waiting for company.

The promise is unchanged: a request is answered only after the transaction holding its event
committed (a 2xx still means stored); a resend is a duplicate; each cart's events apply in the
order they arrived, by the same rules as one at a time (an older event never overwrites a newer
snapshot). One event's refusal (an event id used for another cart, another browser's cart) is
that request's answer only. If a whole transaction fails for another reason, its events are
written again one by one, so whatever is wrong with one of them fails only its own request.

Only events for which ``fast_events.can_batch`` holds come here (a contact and consent included):
orders, opt-outs and nudge replies take ``events.store_event``.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from winback.carts.events import CartEventIn, EventIdConflict
from winback.carts.fast_events import (
    CartRow,
    NotOwned,
    commit_with_retries,
    record_batch,
)
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.retailers.lookups import RetailerIdentity

log = logging.getLogger(__name__)


@dataclass
class WrittenEvent:
    """What one request learns once its event is committed."""

    cart: CartRow
    duplicate: bool


@dataclass
class _Queued:
    retailer: RetailerIdentity
    cart_id: str
    event: CartEventIn
    visitor_hash: str | None
    received_at: datetime
    answer: "asyncio.Future[WrittenEvent]" = field(repr=False)


class EventWriter:
    """Stores the simple events of this process's requests in shared transactions.

    ``record`` queues one event and returns once it is committed. One writer task at a time
    drains the queue, up to ``max_batch`` events a transaction, so the events of one process
    are written in the order they arrived."""

    def __init__(self, sessions: SessionFactory, *, max_batch: int = 200) -> None:
        if max_batch < 1:
            raise ValueError("a transaction carries at least one event")
        self._sessions = sessions
        self._max_batch = max_batch
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(
        self,
        retailer: RetailerIdentity,
        cart_id: str,
        event: CartEventIn,
        *,
        visitor_hash: str | None = None,
    ) -> WrittenEvent:
        """Stores ``event`` and updates its cart; returns after the commit. Raises
        ``EventIdConflict`` or ``NotOwned`` as the ORM path does, and the database's
        error if it could not be stored (then nothing of it was).

        A caller cancelled while waiting (the client went away) cancels only its wait, not
        the write: the event is stored all the same, and its resend is a duplicate."""
        answer: asyncio.Future[WrittenEvent] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(retailer, cart_id, event, visitor_hash, utcnow(), answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued(), name="event-writer")
        return await answer

    @property
    def depth(self) -> int:
        """Events waiting for the writer (not counting those being written)."""
        return len(self._queue)

    async def stop(self) -> None:
        """Waits for the writer to store everything queued so far (the app's shutdown)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    async def _write_queued(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Queued]) -> None:
        try:
            answers = await self._store(batch)
        except asyncio.CancelledError:
            for queued in batch:
                if not queued.answer.done():
                    queued.answer.cancel()
            raise
        except Exception as err:
            if len(batch) == 1:
                _settle(batch[0], err)
                return
            log.warning(
                "a shared transaction of %d events failed (%s: %s); writing them one by one",
                len(batch),
                type(err).__name__,
                err,
            )
            for queued in batch:
                await self._write([queued])
            return
        for queued, outcome in zip(batch, answers, strict=True):
            _settle(queued, outcome)

    async def _store(self, batch: list[_Queued]) -> list[WrittenEvent | Exception]:
        """One transaction for the whole batch: a ``record_batch`` per retailer, each
        with its events in arrival order."""
        by_retailer: dict[str, list[int]] = defaultdict(list)
        for position, queued in enumerate(batch):
            by_retailer[queued.retailer.id].append(position)
        answers: list[WrittenEvent | Exception | None] = [None] * len(batch)

        async with self._sessions() as session:

            async def store_all() -> None:
                for positions in by_retailer.values():
                    group = [batch[p] for p in positions]
                    recorded = await record_batch(
                        session,
                        retailer=group[0].retailer,
                        events=[(q.cart_id, q.event) for q in group],
                        visitors=[q.visitor_hash for q in group],
                        received_at=[q.received_at for q in group],
                    )
                    for p, q, outcome in zip(positions, group, recorded.outcomes, strict=True):
                        if outcome.refusal == "not_owned":
                            answers[p] = NotOwned(q.cart_id)
                        elif outcome.outcome == "rejected":
                            answers[p] = EventIdConflict(outcome.reason or "event refused")
                        else:
                            answers[p] = WrittenEvent(
                                cart=recorded.carts[q.cart_id],
                                duplicate=outcome.outcome == "duplicate",
                            )

            await commit_with_retries(session, store_all)
        assert all(a is not None for a in answers)
        return [a for a in answers if a is not None]


def _settle(queued: _Queued, outcome: WrittenEvent | BaseException) -> None:
    if queued.answer.done():  # cancelled by a caller that stopped waiting: nothing to tell
        return
    if isinstance(outcome, BaseException):
        queued.answer.set_exception(outcome)
    else:
        queued.answer.set_result(outcome)
