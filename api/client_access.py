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

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from starlette.middleware.base import RequestResponseEndpoint

from api.deps import SessionDep
from api.rate_limit import ClientRateLimiter
from winback.carts.client_events import VISITOR_PATTERN, visitor_hash
from winback.retailers.models import Retailer
from winback.retailers.publishable_keys import PublishableKey, find_valid_key

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
    key: PublishableKey
    retailer: Retailer
    visitor: str

    @property
    def visitor_hash(self) -> str:
        return visitor_hash(self.visitor)

    @property
    def event_prefix(self) -> str:
        return f"client-{self.visitor_hash[:16]}"


async def checked_key(
    request: Request, session: SessionDep, key: KeyQuery = None
) -> PublishableKey:
    """The publishable key, valid and allowed from the caller's origin (CORS decided here)."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing ?key= (a publishable key)")
    row = await find_valid_key(session, key)
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


async def get_client(
    request: Request,
    session: SessionDep,
    key: Annotated[PublishableKey, Depends(checked_key)],
    visitor: Annotated[
        str | None,
        Header(
            alias=VISITOR_HEADER,
            max_length=64,
            description="The browser's first-party id (winback.js).",
        ),
    ] = None,
) -> ClientCaller:
    limiter: ClientRateLimiter = request.app.state.client_rate_limiter
    limiter.check(key.key, request.client.host if request.client else "unknown")
    if visitor is None or not VISITOR_PATTERN.fullmatch(visitor):
        raise RequestValidationError(
            [
                {
                    "loc": ("header", VISITOR_HEADER),
                    "msg": "needs the browser's id: 16-128 letters, digits, '-' or '_'",
                    "type": "value_error",
                }
            ]
        )
    retailer = await session.get(Retailer, key.retailer_id)
    assert retailer is not None  # kept by the key's foreign key
    return ClientCaller(key=key, retailer=retailer, visitor=visitor)


ClientDep = Annotated[ClientCaller, Depends(get_client)]
CheckedKeyDep = Annotated[PublishableKey, Depends(checked_key)]


def install_client_cors(app: FastAPI) -> None:
    """Adds the CORS headers to every client response whose key allowed the origin (errors
    included, so a page can read its 429), and nothing to any other response."""

    @app.middleware("http")
    async def _cors(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        if request.url.path.startswith(CLIENT_PREFIX):
            response.headers.append("Vary", "Origin")
            origin = getattr(request.state, "cors_origin", None)
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        return response
