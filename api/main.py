"""The FastAPI app: one engine, one Temporal client, one cart relay and one event writer per
process, made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp
from temporalio.client import Client

from api.body_limit import DeclaredBodyLimit
from api.client_access import ClientCorsMiddleware
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.metrics import MetricsMiddleware, RelayMetrics, watch_relay
from api.pages import demo
from api.pages import surveys as survey_pages
from api.pages.console import install_console
from api.pages.dashboard import install_dashboard
from api.rate_limit import ClientRateLimiter
from api.rate_limits import RateLimiter, rate_limit
from api.routers.carts import cadences, client, client_batch, discounts, events
from api.routers.carts import report as cart_report
from api.routers.customers import consent, lookup, privacy
from api.routers.feedback import alert_rules, answers, cases, surveys
from api.routers.feedback import report as feedback_report
from api.routers.integrations import connections as integration_connections
from api.routers.integrations import webhooks as integration_webhooks
from api.routers.messaging import outbox, templates, unsubscribe, voice_inbound, webhooks
from api.routers.platform import health, snippet
from api.routers.retailers import api_keys, providers, publishable_keys, retailers
from api.routers.tasks import agents, queues, tasks
from winback.carts.event_writer import EventWriter
from winback.carts.relay import CartRelay
from winback.platform.db import make_engine, make_session_factory
from winback.platform.gc_tuning import tune_gc
from winback.platform.settings import Settings, get_settings
from winback.platform.temporal import connect
from winback.platform.tracing import TraceRequests, Tracing, configure_tracing

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None,
    temporal: Client | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Builds the app; tests pass their own Temporal client, production connects on startup.

    ``tracing``: the process's (``configure_tracing``), whose interceptors the given client
    should carry; else made from the settings (``WINBACK_OTEL_EXPORTER``, off by default).
    The schema must be there already: ``winback api`` and ``winback dev`` migrate first.
    """
    settings = settings or get_settings()
    if tracing is None:
        tracing = configure_tracing(
            settings.otel_exporter, settings.otel_service_name or "winback-api"
        )
    traced = tracing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url, busy_timeout=settings.database_busy_timeout_seconds
        )
        app.state.sessions = make_session_factory(engine)
        tune_gc()  # ingestion's short-lived objects (winback.platform.gc_tuning)
        app.state.temporal = temporal or await connect(
            settings.temporal_address,
            settings.temporal_namespace,
            interceptors=traced.interceptors,
        )
        # Cart workflow starts leave the request path (winback.carts.relay); stopped before the
        # engine goes, what it has not told by then is left to the worker's sweep.
        relay = CartRelay(
            app.state.sessions,
            app.state.temporal,
            task_queue=settings.task_queue,
            concurrency=settings.cart_relay_concurrency,
            max_queued=settings.cart_relay_max_queued,
            observer=RelayMetrics(),
        )
        app.state.cart_relay = relay
        watch_relay(relay)
        relay.start()
        # Single simple events share transactions (winback.carts.event_writer).
        app.state.event_writer = writer = EventWriter(app.state.sessions)
        try:
            yield
        finally:
            await writer.stop()
            await relay.stop()
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
    # Pure ASGI middlewares (the last added runs first): metrics see every route's status.
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ClientCorsMiddleware)
    routers = (
        retailers,
        api_keys,
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
        surveys,
        unsubscribe,
        webhooks,
        privacy,
        integration_connections,
        integration_webhooks,
        publishable_keys,
        client_batch,
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

    def outer_stack() -> ASGIApp:
        stack: ASGIApp = DeclaredBodyLimit(build_stack(), max_bytes=settings.max_body_bytes)
        if traced.tracer is not None:  # outermost: the span covers every request, 413s too
            stack = TraceRequests(stack, traced.tracer)
        return stack

    app.build_middleware_stack = outer_stack  # type: ignore[method-assign]
    if settings.demo_store:  # only the embedded dev stack serves the demo storefront
        app.include_router(demo.router)
    app.include_router(survey_pages.router)
    install_console(app)
    install_dashboard(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
