"""The request-body cap's answer: a 413 that says the limit, in the one error schema.

FastAPI's ``max_body_size`` (set in ``create_app``) counts a body as it arrives and refuses it
once it passes the cap, so a 10 MB body is never buffered or parsed. A ``Content-Length`` over
the cap is refused here first, before a byte is read, with the same JSON as every other error
(Starlette's own early answer is plain text).
"""

import json

from starlette.types import ASGIApp, Receive, Scope, Send


def too_large(max_bytes: int) -> str:
    return f"request body too large: at most {max_bytes} bytes"


class DeclaredBodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if scope["type"] != "http" or declared is None:
            await self.app(scope, receive, send)
            return
        if declared.isdigit() and int(declared) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": too_large(self.max_bytes), "errors": []}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
