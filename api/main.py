"""The FastAPI app: one engine and one Temporal client per process, made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api.body_limit import DeclaredBodyLimit
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.metrics import install_metrics
from api.rate_limits import RateLimiter, rate_limit
from api.routers.carts import cadences, discounts, events
from api.routers.carts import report as cart_report
from api.routers.customers import consent, lookup
from api.routers.feedback import alert_rules, answers, cases
from api.routers.feedback import report as feedback_report
from api.routers.messaging import outbox, templates, unsubscribe, webhooks
from api.routers.platform import health
from api.routers.retailers import providers, retailers
from api.routers.tasks import agents, queues, tasks
from winback.platform.db import create_tables, make_engine, make_session_factory
from winback.platform.settings import Settings, get_settings
from winback.platform.temporal import connect


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """Builds the app; tests pass their own Temporal client, production connects on startup."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await create_tables(engine)
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
    install_error_handlers(app)
    install_metrics(app)
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
    return app
