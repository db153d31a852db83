"""Browser session cookies (``api/sessions.py``): unreadable, unforgeable, expiring, scoped."""

import time

from fastapi import Response
from starlette.requests import Request

from api.sessions import SessionCookies, csrf_matches
from winback.platform.settings import Settings


def request_with(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", header.encode())]})


def cookie_of(response: Response) -> tuple[str, str]:
    raw = response.headers["set-cookie"]
    name, _, rest = raw.partition("=")
    return name, rest.split(";", 1)[0]


def issue(cookies: SessionCookies, now: int | None = None) -> tuple[str, str]:
    response = Response()
    cookies.start(
        response, kind="agent", subject="ana", retailer_id="acme", credential="h", now=now
    )
    return cookie_of(response)


def test_a_session_reads_back_until_it_expires_and_never_as_another_kind() -> None:
    cookies = SessionCookies(Settings(), name="s", path="/console", max_age=3600)
    name, value = issue(cookies)
    session = cookies.read(request_with({name: value}), kind="agent")
    assert session is not None and session.subject == "ana" and session.retailer_id == "acme"
    assert "ana" not in value  # encrypted, not just signed
    assert cookies.read(request_with({name: value}), kind="retailer") is None
    _, stale = issue(cookies, now=int(time.time()) - 3601)
    assert cookies.read(request_with({name: stale}), kind="agent") is None


def test_a_tampered_cookie_or_one_from_another_key_is_no_session() -> None:
    cookies = SessionCookies(Settings(), name="s", path="/console", max_age=3600)
    name, value = issue(cookies)
    tampered = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    assert cookies.read(request_with({name: tampered}), kind="agent") is None
    other_key = Settings(secrets_key="J0vG6z8bqO4x3mH0Pz7Ff0u6y5HfK5mWc7l0sVbXq1E=")  # type: ignore[arg-type]
    elsewhere = SessionCookies(other_key, name="s", path="/console", max_age=3600)
    assert elsewhere.read(request_with({name: value}), kind="agent") is None


def test_the_csrf_token_must_match_exactly() -> None:
    cookies = SessionCookies(Settings(), name="s", path="/console", max_age=3600)
    name, value = issue(cookies)
    session = cookies.read(request_with({name: value}), kind="agent")
    assert session is not None
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, session.csrf[:-1])
