"""Rate limits per credential and per client address, with ``429`` and ``Retry-After``.

Two limits apply to every limited request, each in a moving window (``limits``):

- per credential: the API key, agent token or (for provider webhooks, which carry no key) the
  retailer named in the path; only a hash of a secret is kept as the bucket's name;
- per client address, whoever the request claims to be, so nobody can dodge the first limit by
  sending made-up keys.

``RateLimitDep`` is the dependency to put on a router or a route; ``rate_limit(scope, key=...)``
makes one for a new kind of caller (the storefront snippet's publishable key, say). The limiter
lives on the app (``app.state.rate_limiter``), one per process.
"""

import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from winback.platform.settings import Settings

CREDENTIAL_HEADERS = ("x-api-key", "x-agent-token", "x-admin-token")


@dataclass
class RateLimiter:
    """The app's limiter and its two limits."""

    strategy: MovingWindowRateLimiter
    per_key: RateLimitItem
    per_address: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        return cls(
            MovingWindowRateLimiter(MemoryStorage()),
            parse(settings.rate_limit_per_key),
            parse(settings.rate_limit_per_address),
        )

    def hit(self, limit: RateLimitItem, *identifiers: str) -> None:
        """Counts one request; a 429 with ``Retry-After`` when the window is full.

        The synchronous storage on purpose: a hit is a few microseconds under a lock, and the
        asyncio one (``limits.aio``) expires old entries on every hit in a new task that hops
        to a thread once per bucket (every credential's and address's): under 8 agents that
        was 8.5% of the API process's CPU (py-spy, ``bench.agent_operations``)."""
        if self.strategy.hit(limit, *identifiers):
            return
        stats = self.strategy.get_window_stats(limit, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit {limit} exceeded; retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def credential_of(request: Request) -> str | None:
    """Who the request says it is: a credential header, else the retailer in a webhook's path."""
    for header in CREDENTIAL_HEADERS:
        value = request.headers.get(header)
        if value:
            return f"{header}:{_digest(value)}"
    retailer = request.path_params.get("retailer_id")
    return f"retailer:{retailer}" if retailer else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limit(
    scope: str, key: Callable[[Request], str | None] = credential_of
) -> Callable[[Request], Awaitable[None]]:
    """A dependency that applies both limits to a request, named ``scope`` in the buckets."""

    async def limited(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.hit(limiter.per_address, scope, "address", client_address(request))
        credential = key(request)
        if credential is not None:
            limiter.hit(limiter.per_key, scope, "key", credential)

    return limited


RateLimitDep = Annotated[None, Depends(rate_limit("api"))]
