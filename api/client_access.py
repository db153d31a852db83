"""Who may call the client endpoints (``/v1/client/...``): a publishable key, from one of its
allowed origins, within its rate limits, for one browser.

CORS is decided per key: the key travels in the query string (``?key=pk_...``) because a
browser's preflight carries the URL but no custom header, so the preflight itself can be
answered for that key's origins only. A page on another origin gets no
``Access-Control-Allow-Origin`` and the browser refuses it; the request is also refused here
(403), so a non-browser client faking no ``Origin`` gains nothing the key does not already give.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SessionFactoryDep
from api.rate_limit import ClientRateLimiter
from winback.carts.client_events import VISITOR_PATTERN, visitor_hash
from winback.retailers.lookups import ClientKeyRef, RetailerRef, cached_client_key, client_key

CLIENT_PREFIX = "/v1/client/"
VISITOR_HEADER = "X-Winback-Visitor"
ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = f"Content-Type, {VISITOR_HEADER}"
PREFLIGHT_MAX_AGE = "600"

KeyQuery = Annotated[
    str | None,
    Query(alias="key", max_length=100, description="The publishable key (`pk_...`)."),
]


@dataclass
class ClientCaller:
    key: ClientKeyRef
    retailer: RetailerRef
    visitor: str

    @property
    def visitor_hash(self) -> str:
        return visitor_hash(self.visitor)

    @property
    def event_prefix(self) -> str:
        return event_prefix(self.visitor)


def event_prefix(visitor: str) -> str:
    """Event ids from a browser are prefixed with its own hash: no collision with (or replay
    of) the backend's ids or another browser's."""
    return f"client-{visitor_hash(visitor)[:16]}"


async def checked_key(
    request: Request, factory: SessionFactoryDep, key: KeyQuery = None
) -> ClientKeyRef:
    """The publishable key, valid and allowed from the caller's origin (CORS decided here).

    Looked up in the per-process cache (``winback.retailers.lookups``), on a miss in a short
    session of its own, so the request's own transaction starts with its write."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing ?key= (a publishable key)")
    row = cached_client_key(key)
    if row is None:  # a miss: read it (a hit makes no session at all)
        async with factory() as session:
            row = await client_key(session, key)
    if row is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or expired publishable key")
    origin = request.headers.get("origin")
    if origin is not None:
        if not row.allows(origin):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"origin {origin!r} is not allowed for this key"
            )
        request.state.cors_origin = origin
    return row


def check_client_rate(request: Request, key: ClientKeyRef) -> None:
    """One request counted against the key's and the client address's limits (429 if over)."""
    limiter: ClientRateLimiter = request.app.state.client_rate_limiter
    limiter.check(key.key, request.client.host if request.client else "unknown")


def checked_visitor(visitor: str | None, loc: tuple[str, ...]) -> str:
    if visitor is None or not VISITOR_PATTERN.fullmatch(visitor):
        raise RequestValidationError(
            [
                {
                    "loc": loc,
                    "msg": "needs the browser's id: 16-128 letters, digits, '-' or '_'",
                    "type": "value_error",
                }
            ]
        )
    return visitor


async def get_client(
    request: Request,
    key: Annotated[ClientKeyRef, Depends(checked_key)],
    visitor: Annotated[
        str | None,
        Header(
            alias=VISITOR_HEADER,
            max_length=64,
            description="The browser's first-party id (winback.js).",
        ),
    ] = None,
) -> ClientCaller:
    check_client_rate(request, key)
    visitor = checked_visitor(visitor, ("header", VISITOR_HEADER))
    return ClientCaller(key=key, retailer=key.retailer, visitor=visitor)


ClientDep = Annotated[ClientCaller, Depends(get_client)]
CheckedKeyDep = Annotated[ClientKeyRef, Depends(checked_key)]


class ClientCorsMiddleware:
    """Adds the CORS headers to every client response whose key allowed the origin (errors
    included, so a page can read its 429), and nothing to any other response.

    Pure ASGI (not ``@app.middleware("http")``): it edits the headers of the response start
    message as it goes by, and costs nothing on the other routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CLIENT_PREFIX):
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("Vary", "Origin")
                origin = scope.get("state", {}).get("cors_origin")
                if origin is not None:
                    headers["Access-Control-Allow-Origin"] = origin
                    headers["Access-Control-Expose-Headers"] = "Retry-After"
            await send(message)

        await self.app(scope, receive, add_headers)
