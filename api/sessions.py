"""Browser sessions for people's pages: a credential exchanged once for a session cookie.

The cookie is a Fernet token (AES + HMAC, with its issue time) under a key derived from
``WINBACK_SECRETS_KEY``, so it cannot be read or forged, and it expires ``max_age`` after
sign-in whatever the browser does. It is HttpOnly (no script reads it), ``SameSite=Strict``
(no other site's page sends it) and ``Secure`` when the public URL is HTTPS. It names the
person, their retailer, a fingerprint of their credential (a new token ends old sessions) and
the session's CSRF token, which every form and every htmx request sends back and
``require_csrf`` compares in constant time.

Nothing here knows about agents: the console makes a ``WebSession`` of kind ``agent``; the
retailers' dashboards can make one of kind ``retailer`` with the same cookie machinery.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken
from fastapi import HTTPException, Request, Response, status

from winback.platform.crypto import dev_key
from winback.platform.settings import Settings

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class WebSession:
    kind: str  # who signed in: "agent" (the console); "retailer" later (dashboards)
    subject: str  # their id within the retailer
    retailer_id: str
    fingerprint: str  # of the credential they signed in with
    csrf: str
    issued_at: int  # Unix seconds

    def expires_at(self, max_age: int) -> int:
        return self.issued_at + max_age


def fingerprint(credential_hash: str) -> str:
    """A short, stable tag of a stored credential hash; not enough to recover anything."""
    return hashlib.sha256(f"session:{credential_hash}".encode()).hexdigest()[:16]


class SessionCookies:
    """Issues, reads and clears one kind of session cookie."""

    def __init__(self, settings: Settings, *, name: str, path: str, max_age: int) -> None:
        secret = (
            settings.secrets_key.get_secret_value().encode()
            if settings.secrets_key is not None
            else dev_key()
        )
        # Its own key: a cookie can never be replayed as an encrypted provider secret.
        derived = hmac.new(secret, b"winback web sessions v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self.name = name
        self.path = path
        self.max_age = max_age
        self._secure = settings.public_base_url.startswith("https://")

    def start(
        self,
        response: Response,
        *,
        kind: str,
        subject: str,
        retailer_id: str,
        credential: str,
        now: int | None = None,
    ) -> WebSession:
        """A new session (a new CSRF token too) set on ``response``; ``now`` is for tests."""
        now = int(time.time()) if now is None else now
        session = WebSession(
            kind=kind,
            subject=subject,
            retailer_id=retailer_id,
            fingerprint=fingerprint(credential),
            csrf=secrets.token_urlsafe(32),
            issued_at=now,
        )
        token = self._fernet.encrypt_at_time(json.dumps(asdict(session)).encode(), now)
        response.set_cookie(
            self.name,
            token.decode(),
            max_age=self.max_age,
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=self._secure,
        )
        return session

    def read(self, request: Request, *, kind: str) -> WebSession | None:
        """The request's session of this kind, if it has a valid one that has not expired."""
        token = request.cookies.get(self.name)
        if not token:
            return None
        try:
            raw = self._fernet.decrypt(token.encode(), ttl=self.max_age)
            session = WebSession(**json.loads(raw))
        except (InvalidToken, ValueError, TypeError):
            return None
        return session if session.kind == kind else None

    def end(self, response: Response) -> None:
        response.delete_cookie(
            self.name, path=self.path, httponly=True, samesite="strict", secure=self._secure
        )


def csrf_matches(session: WebSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


async def require_csrf(request: Request, session: WebSession) -> None:
    """Refuses a state-changing request without the session's CSRF token (403): in the
    ``X-CSRF-Token`` header (htmx sends it) or the form's ``csrf_token`` field."""
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not csrf_matches(session, submitted):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this form has expired or did not come from this site: reload the page and retry",
        )
