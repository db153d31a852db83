"""Builds what runs: the database, the channel adapters, the API app and the worker, from one
``Settings``. The CLI, the tests and the benchmark all assemble Winback through here."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

import winback.composition.tables  # noqa: F401  (every table on the metadata)
from api.main import create_app
from winback.composition.worker import build_worker
from winback.messaging.channels.factory import adapters_from_settings
from winback.messaging.channels.router import Adapters, RetailerChannelRouter
from winback.messaging.template_runner import template_runner
from winback.platform.db import SessionFactory, make_engine, make_session_factory
from winback.platform.migrations import migrate
from winback.platform.settings import Settings
from winback.platform.tracing import Tracing


async def prepare_database(settings: Settings) -> AsyncEngine:
    """The app database, with its data directory made and its schema migrated to head (under
    the migration lock, so processes starting together do not trip over each other)."""
    await migrate(settings.database_url)
    return make_engine(settings.database_url, busy_timeout=settings.database_busy_timeout_seconds)


def production_adapters(settings: Settings, sessions: SessionFactory) -> Adapters:
    """Each retailer's own providers, else the process-wide keys, else the outbox."""
    return RetailerChannelRouter(sessions, settings, adapters_from_settings(settings))


def build_app(
    settings: Settings, temporal: Client | None = None, tracing: Tracing | None = None
) -> FastAPI:
    """The API; given a client (tests, ``winback dev``) it uses it, else it connects on start."""
    return create_app(settings, temporal=temporal, tracing=tracing)


@asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    adapters: Adapters | None = None,
    http: httpx.AsyncClient | None = None,
) -> AsyncIterator[Worker]:
    """A worker polling ``settings.task_queue`` until the block ends."""
    async with httpx.AsyncClient(timeout=10) as own_http:
        worker = build_worker(
            client,
            settings=settings,
            sessions=sessions,
            adapters=adapters if adapters is not None else production_adapters(settings, sessions),
            http=http or own_http,
        )
        async with worker:
            # In the background: polling starts at once, the first render finds its process.
            warm_up = asyncio.create_task(template_runner().warm_up())
            try:
                yield worker
            finally:
                warm_up.cancel()


__all__ = [
    "build_app",
    "make_session_factory",
    "prepare_database",
    "production_adapters",
    "running_worker",
]
