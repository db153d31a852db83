"""The FastAPI app: one engine and one Temporal client per process, made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api.body_limit import DeclaredBodyLimit
from api.client_access import install_client_cors
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.metrics import install_metrics
from api.pages import demo
from api.pages.console import install_console
from api.rate_limit import ClientRateLimiter
from api.rate_limits import RateLimiter, rate_limit
from api.routers.carts import cadences, client, discounts, events
from api.routers.carts import report as cart_report
from api.routers.customers import consent, lookup, privacy
from api.routers.feedback import alert_rules, answers, cases
from api.routers.feedback import report as feedback_report
from api.routers.integrations import connections as integration_connections
from api.routers.integrations import webhooks as integration_webhooks
from api.routers.messaging import outbox, templates, unsubscribe, voice_inbound, webhooks
from api.routers.platform import health, snippet
from api.routers.retailers import providers, publishable_keys, retailers
from api.routers.tasks import agents, queues, tasks
from winback.platform.db import make_engine, make_session_factory
from winback.platform.settings import Settings, get_settings
from winback.platform.temporal import connect

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """Builds the app; tests pass their own Temporal client, production connects on startup.

    The schema must be there already: ``winback api`` and ``winback dev`` migrate first.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url, busy_timeout=settings.database_busy_timeout_seconds
        )
        app.state.sessions = make_session_factory(engine)
        app.state.temporal = temporal or await connect(
            settings.temporal_address, settings.temporal_namespace
        )
        yield
        await engine.dispose()

    app = FastAPI(
        title="Winback",
        summary="Wins customers back for online retailers, on durable Temporal workflows.",
        version="0.1.0",
        lifespan=lifespan,
        # A larger body is a 413 before anything parses it (Content-Length, or counted as it
        # arrives when chunked).
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.client_rate_limiter = ClientRateLimiter(
        settings.client_rate_limit_per_key, settings.client_rate_limit_per_address
    )
    install_error_handlers(app)
    install_metrics(app)
    install_client_cors(app)
    routers = (
        retailers,
        cadences,
        templates,
        discounts,
        events,
        outbox,
        cart_report,
        feedback_report,
        agents,
        queues,
        tasks,
        lookup,
        consent,
        providers,
        alert_rules,
        answers,
        cases,
        unsubscribe,
        webhooks,
        privacy,
        integration_connections,
        integration_webhooks,
        publishable_keys,
        client,
        snippet,
        voice_inbound,
    )
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    app.include_router(health.router, responses=ERROR_RESPONSES)
    for router in routers:
        # One error schema for every 4xx/5xx, declared on every route (the OpenAPI is true);
        # every route but the health check is rate limited per credential and per address.
        app.include_router(
            router.router,
            responses=ERROR_RESPONSES,
            dependencies=[Depends(rate_limit("api"))],
        )
    # Outside everything, FastAPI's own body limit included: a declared Content-Length over the
    # cap gets the JSON 413 before any middleware runs.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: DeclaredBodyLimit(  # type: ignore[method-assign]
        build_stack(), max_bytes=settings.max_body_bytes
    )
    if settings.demo_store:  # only the embedded dev stack serves the demo storefront
        app.include_router(demo.router)
    install_console(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
