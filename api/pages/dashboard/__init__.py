"""The retailers' dashboards under ``/dashboard``: sign-in with an API key, the cart page and
the feedback page (charts, their tables, CSV downloads, a period picker)."""

import inspect

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.pages.console.templating import render
from api.pages.dashboard import auth, pages

ROUTERS = (auth.router, pages.router)


def install_dashboard(app: FastAPI) -> None:
    """Adds the dashboards' routes, and answers their errors with pages instead of JSON (any
    other path keeps the handler installed before, the console's or FastAPI's)."""
    for router in ROUTERS:
        app.include_router(router)
    previous = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    @app.exception_handler(auth.DashboardSignInRequired)
    async def _sign_in(request: Request, exc: auth.DashboardSignInRequired) -> Response:
        return auth.sign_in_redirect(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _page_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/dashboard"):
            answer = previous(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return render(
            request,
            "dashboard/error.html",
            {"status": exc.status_code, "detail": exc.detail, "user": None},
            status_code=exc.status_code,
        )
