"""The agents' console under ``/console``: sign-in, the live inbox, task pages, customer
lookup, the supervisor's view and the live stream that pops a caller's panel."""

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.pages.console import auth, customers, inbox, live, supervisor, tasks
from api.pages.console.templating import render

ROUTERS = (
    auth.router,
    live.router,
    supervisor.router,
    customers.router,
    tasks.router,
    inbox.router,
)


def install_console(app: FastAPI) -> None:
    """Adds the console's routes, and answers its errors with pages instead of JSON."""
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, exc: auth.SignInRequired) -> Response:
        return auth.sign_in_redirect(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _page_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/console"):
            return await http_exception_handler(request, exc)
        return render(
            request,
            "console/error.html",
            {"status": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
        )
