"""The FastAPI app: one engine and one Temporal client per process, made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.routers import (
    agents,
    alert_rules,
    cadences,
    carts,
    cases,
    consent,
    customers,
    discounts,
    feedback,
    health,
    outbox,
    providers,
    queues,
    reports,
    retailers,
    tasks,
    templates,
    unsubscribe,
    webhooks,
)
from winback.db import create_tables, make_engine, make_session_factory
from winback.settings import Settings, get_settings
from winback.temporal import connect


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
    )
    install_error_handlers(app)
    install_metrics(app)
    routers = (
        health,
        retailers,
        cadences,
        templates,
        discounts,
        carts,
        outbox,
        reports,
        agents,
        queues,
        tasks,
        customers,
        consent,
        providers,
        alert_rules,
        feedback,
        cases,
        unsubscribe,
        webhooks,
    )
    for router in routers:
        app.include_router(router.router)
    return app
