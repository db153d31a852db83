"""Waking live pages at once when this process changes something they show.

A page's event stream polls the database every ``POLL_SECONDS`` anyway, which is what makes it
see changes written by other processes (the worker's activities, another API replica). The bell
only lets a change made in this process reach the streams without waiting for the next poll.
"""

import asyncio
import contextlib

from fastapi import FastAPI

POLL_SECONDS = 0.5


class Bell:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        """Wakes everyone waiting now; later waiters wait for the next ring."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float = POLL_SECONDS) -> None:
        """Returns on the next ring, or after ``seconds``."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


def bell_of(app: FastAPI) -> Bell:
    bell: Bell | None = getattr(app.state, "live_bell", None)
    if bell is None:
        bell = app.state.live_bell = Bell()
    return bell
