"""Agents sign in to the console with their token, once; the browser then holds a session.

The token is checked exactly as the JSON API checks ``X-Agent-Token`` (``agent_of_token``), and
every later request loads the same ``Agent`` row, so each page is scoped to the agent's
retailer and uses the same permission checks as the API. The sign-in form itself is protected
by a double-submit CSRF cookie (there is no session yet to hold a token).
"""

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, SettingsDep, agent_of_token
from api.pages.console.templating import render
from api.sessions import SessionCookies, WebSession, fingerprint, require_csrf
from winback.platform.settings import Settings
from winback.tasks.agent_models import Agent
from winback.tasks.inbox import find_agent

router = APIRouter(prefix="/console", include_in_schema=False)

SESSION_HOURS = 8
SIGN_IN_CSRF_COOKIE = "winback_console_signin"
AGENT = "agent"


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, htmx requests are told to."""

    def __init__(self, next_url: str = "/console") -> None:
        self.next_url = next_url


def console_cookies(settings: Settings) -> SessionCookies:
    return SessionCookies(
        settings, name="winback_console", path="/console", max_age=SESSION_HOURS * 3600
    )


@dataclass
class ConsoleUser:
    """The agent behind this browser session."""

    agent: Agent
    web: WebSession

    @property
    def csrf(self) -> str:
        return self.web.csrf


async def get_console_user(
    request: Request, session: SessionDep, settings: SettingsDep
) -> ConsoleUser:
    web = console_cookies(settings).read(request, kind=AGENT)
    agent = (
        await find_agent(session, retailer_id=web.retailer_id, agent_id=web.subject)
        if web is not None
        else None
    )
    if web is None or agent is None or fingerprint(agent.token_hash) != web.fingerprint:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/console")
    return ConsoleUser(agent, web)


ConsoleUserDep = Annotated[ConsoleUser, Depends(get_console_user)]


async def checked_csrf(request: Request, user: ConsoleUserDep) -> ConsoleUser:
    """The signed-in agent, for a request that changes something: it must carry the CSRF token."""
    await require_csrf(request, user.web)
    return user


ConsoleActionDep = Annotated[ConsoleUser, Depends(checked_csrf)]


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    url = f"/console/sign-in?next={quote(exc.next_url, safe='')}"
    if request.headers.get("HX-Request"):
        return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def safe_next(next_url: str | None) -> str:
    """Only a page of the console: never another site (an open redirect)."""
    if next_url and next_url.startswith("/console") and not next_url.startswith("//"):
        return next_url
    return "/console"


def _sign_in_page(request: Request, next_url: str, error: str | None, code: int) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    response = render(
        request,
        "console/sign_in.html",
        {"csrf": csrf, "next": safe_next(next_url), "error": error},
        status_code=code,
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/console") -> HTMLResponse:
    """The sign-in page: one field, the agent's token."""
    return _sign_in_page(request, next, None, status.HTTP_200_OK)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    """Exchanges the agent's token for a session cookie and goes on to the page asked for."""
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE) or ""
    if not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _sign_in_page(
            request,
            next,
            "The sign-in form expired. Please try again.",
            status.HTTP_403_FORBIDDEN,
        )
    try:
        agent = await agent_of_token(session, token.strip())
    except HTTPException:
        return _sign_in_page(
            request,
            next,
            "That token is not an agent's token. Check it and try again.",
            status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    console_cookies(settings).start(
        response,
        kind=AGENT,
        subject=agent.agent_id,
        retailer_id=agent.retailer_id,
        credential=agent.token_hash,
    )
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(user: ConsoleActionDep, settings: SettingsDep) -> Response:
    """Ends the session in this browser."""
    response = RedirectResponse("/console/sign-in", status_code=status.HTTP_303_SEE_OTHER)
    console_cookies(settings).end(response)
    return response
