"""Rate limits for the client endpoints: per publishable key and per client address.

A moving window in process memory (the ``limits`` library): enough for one API process, and a
page's snippet makes a few requests a minute. A refusal is a 429 with ``Retry-After``. Several
API processes each count on their own; a shared store (``limits`` supports Redis) can replace
``MemoryStorage`` here without touching the routes.
"""

import math
import time

from fastapi import HTTPException, status
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class ClientRateLimiter:
    def __init__(self, per_key: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_key: RateLimitItem = parse(per_key)
        self._per_address: RateLimitItem = parse(per_address)

    def check(self, key: str, address: str) -> None:
        """Counts one request; raises 429 if the key or the address is over its limit."""
        for item, ids in ((self._per_key, (key,)), (self._per_address, (key, address))):
            if not self._limiter.hit(item, "client", *ids):
                reset = self._limiter.get_window_stats(item, "client", *ids).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f"too many requests for this {'key' if len(ids) == 1 else 'address'}; "
                    f"retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )
