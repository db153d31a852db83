"""Last-touch attribution with a window per channel.

An order is credited to the latest touch before it whose channel's window still covers the
order (``CadenceIn.window_for``: ``attribution_windows`` per channel, else
``attribution_window``, 7 days by default); with no such touch it is unattributed. Held-out
messages are never touches (their status is not in ``TOUCH_STATUSES``). Decided when the order
arrives (``winback.carts.events``) and kept on the cart, which the report reads.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from winback.messaging.models import Message
from workflows.vocabulary import MessageStatus

# A touch: a message that reached the shopper, or an on-site nudge offered, shown or answered.
TOUCH_STATUSES = (
    *MessageStatus.TOUCHED,
    MessageStatus.PENDING,
    MessageStatus.SHOWN,
    MessageStatus.ACCEPTED,
    MessageStatus.DISMISSED,
)


def attributed_touch(
    ordered_at: datetime,
    messages: Iterable[Message],
    window_for: Callable[[str], timedelta],
) -> Message | None:
    """The touch the order is credited to, or None."""
    ordered_at = _aware(ordered_at)
    best: Message | None = None
    for m in messages:
        at = _aware(m.created_at)
        if m.status not in TOUCH_STATUSES or at > ordered_at:
            continue
        if ordered_at - at > window_for(m.channel):
            continue
        if best is None or (at, m.id or 0) > (_aware(best.created_at), best.id or 0):
            best = m
    return best


def _aware(moment: datetime) -> datetime:
    """UTC either way: a naive time from the database is UTC (as the report's days assume)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
