"""The FastAPI app: one engine and one Temporal client per process, made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api.client_access import install_client_cors
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.pages import demo
from api.pages.console import install_console
from api.rate_limit import ClientRateLimiter
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
        engine = make_engine(settings.database_url)
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
    )
    app.state.settings = settings
    app.state.client_rate_limiter = ClientRateLimiter(
        settings.client_rate_limit_per_key, settings.client_rate_limit_per_address
    )
    install_error_handlers(app)
    install_metrics(app)
    install_client_cors(app)
    routers = (
        health,
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
    for router in routers:
        app.include_router(router.router)
    if settings.demo_store:  # only the embedded dev stack serves the demo storefront
        app.include_router(demo.router)
    install_console(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
