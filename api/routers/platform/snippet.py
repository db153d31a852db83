"""``winback.js``, the storefront snippet, served from a static file in the repository.

The URL carries the snippet's major version: within ``v1`` the file only changes compatibly, so
it is cached for a day by browsers and CDNs (with an ETag to revalidate cheaply); a breaking
change gets ``/winback/v2/``. No build step: the file in ``api/static`` is what is served.
"""

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

STATIC = Path(__file__).resolve().parents[2] / "static"
SNIPPET = STATIC / "winback" / "v1" / "winback.js"
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"

router = APIRouter(tags=["storefront snippet"])


@lru_cache(maxsize=1)
def _snippet() -> tuple[bytes, str]:
    body = SNIPPET.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@router.get("/winback/v1/winback.js", response_class=Response, include_in_schema=False)
async def winback_js(request: Request) -> Response:
    """The snippet: `<script src=".../winback/v1/winback.js" data-key="pk_..." async>`."""
    body, etag = _snippet()
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",  # a public file; lets pages load it with SRI
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
