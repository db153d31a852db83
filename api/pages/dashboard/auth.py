"""Retailers sign in to the dashboards with an API key, once; the browser then holds a session.

The key is checked exactly as the JSON routes check ``X-API-Key`` for the reports
(``key_reader``): the retailer's own key sees every business unit, a unit's key
(``POST /v1/api-keys``) only its own. Every later request loads the same key row again, so a
revoked key ends its sessions at once. The cookie machinery and CSRF are the console's
(``api/sessions.py``), under another cookie name and path; the sign-in form has the same
double-submit CSRF cookie.
"""

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ReportReader, SessionDep, SettingsDep, key_reader
from api.pages.console.templating import render
from api.sessions import SessionCookies, WebSession, fingerprint, require_csrf
from winback.platform.settings import Settings
from winback.retailers.models import ApiKey, Retailer

router = APIRouter(prefix="/dashboard", include_in_schema=False)

SESSION_HOURS = 8
SIGN_IN_CSRF_COOKIE = "winback_dashboard_signin"
RETAILER = "retailer"


class DashboardSignInRequired(Exception):
    """No valid session: the page redirects to the sign-in page."""

    def __init__(self, next_url: str = "/dashboard") -> None:
        self.next_url = next_url


def dashboard_cookies(settings: Settings) -> SessionCookies:
    return SessionCookies(
        settings, name="winback_dashboard", path="/dashboard", max_age=SESSION_HOURS * 3600
    )


@dataclass
class DashboardUser:
    """The retailer (and, for a unit's key, the one business unit) behind this session."""

    reader: ReportReader
    web: WebSession

    @property
    def retailer(self) -> Retailer:
        return self.reader.retailer

    @property
    def business_unit(self) -> str | None:
        return self.reader.business_unit

    @property
    def csrf(self) -> str:
        return self.web.csrf


async def get_dashboard_user(
    request: Request, session: SessionDep, settings: SettingsDep
) -> DashboardUser:
    web = dashboard_cookies(settings).read(request, kind=RETAILER)
    key = await session.get(ApiKey, int(web.subject)) if web and web.subject.isdigit() else None
    retailer = await session.get(Retailer, key.retailer_id) if key is not None else None
    if (
        web is None
        or key is None
        or retailer is None
        or key.retailer_id != web.retailer_id
        or fingerprint(key.key_hash) != web.fingerprint
    ):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise DashboardSignInRequired(target if request.method == "GET" else "/dashboard")
    return DashboardUser(ReportReader(retailer, key.business_unit), web)


DashboardUserDep = Annotated[DashboardUser, Depends(get_dashboard_user)]


async def checked_csrf(request: Request, user: DashboardUserDep) -> DashboardUser:
    await require_csrf(request, user.web)
    return user


DashboardActionDep = Annotated[DashboardUser, Depends(checked_csrf)]


def sign_in_redirect(exc: DashboardSignInRequired) -> Response:
    url = f"/dashboard/sign-in?next={quote(exc.next_url, safe='')}"
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def safe_next(next_url: str | None) -> str:
    """Only a page of the dashboards: never another site (an open redirect)."""
    if next_url and next_url.startswith("/dashboard") and not next_url.startswith("//"):
        return next_url
    return "/dashboard"


def _sign_in_page(request: Request, next_url: str, error: str | None, code: int) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    response = render(
        request,
        "dashboard/sign_in.html",
        {"csrf": csrf, "next": safe_next(next_url), "error": error, "user": None},
        status_code=code,
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE, csrf, max_age=3600, path="/dashboard", httponly=True, samesite="strict"
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/dashboard") -> HTMLResponse:
    """The sign-in page: one field, the retailer's (or a business unit's) API key."""
    return _sign_in_page(request, next, None, status.HTTP_200_OK)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/dashboard",
) -> Response:
    """Exchanges the API key for a session cookie and goes on to the page asked for."""
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE) or ""
    if not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _sign_in_page(
            request, next, "The sign-in form expired. Please try again.", status.HTTP_403_FORBIDDEN
        )
    try:
        key, reader = await key_reader(session, api_key.strip())
    except HTTPException:
        return _sign_in_page(
            request,
            next,
            "That is not a Winback API key. Check it and try again.",
            status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    dashboard_cookies(settings).start(
        response,
        kind=RETAILER,
        subject=str(key.id),
        retailer_id=reader.retailer.id,
        credential=key.key_hash,
    )
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/dashboard")
    return response


@router.post("/sign-out")
async def sign_out(user: DashboardActionDep, settings: SettingsDep) -> Response:
    """Ends the session in this browser."""
    response = RedirectResponse("/dashboard/sign-in", status_code=status.HTTP_303_SEE_OTHER)
    dashboard_cookies(settings).end(response)
    return response
