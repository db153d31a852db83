"""Browser fixtures shared by the console's, the dashboards' and the survey page's tests: the
distribution's Chromium driven by Playwright's async API, against a live uvicorn server serving
the real app, with a real worker on the time-skipping Temporal server. (The storefront's tests
have their own, with a second origin playing the retailer's store.)

- ``browser``: one Chromium per session (skipped without ``/usr/bin/chromium``, unless ``CI``
  is set: then it fails, because CI must run these).
- ``context``: a fresh browser context (cookies, storage) per test; ``new_context`` for more.
- ``live``: the API on a free 127.0.0.1 port and a worker, as ``tests/conftest.py`` builds the
  stack, but over real HTTP so the browser can reach it.
- ``shot``: where a screenshot goes: the test's temp dir, or ``WINBACK_SCREENSHOTS`` (so a plain
  test run never dirties the working tree; ``WINBACK_SCREENSHOTS=docs/screenshots`` refreshes
  the README's).
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.conftest import Stack, test_settings
from winback.composition.stack import build_app, running_worker
from winback.messaging.channels import ChannelAdapter
from winback.platform.db import SessionFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TWILIO_AUTH_TOKEN = "test-twilio-auth-token"
VIEWPORT = {"width": 1280, "height": 800}
_SHOTS = os.environ.get("WINBACK_SCREENSHOTS")
SCREENSHOTS = Path(_SHOTS).resolve() if _SHOTS else None


def shot(tmp_path: Path, name: str) -> str:
    folder = SCREENSHOTS or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install chromium for the browser tests")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=10_000)  # a slow, shared machine; still no sleeps
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@dataclass
class LiveConsole:
    """The stack over real HTTP, and where the browser finds it."""

    stack: Stack
    base_url: str
    twilio_auth_token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def live(
    fresh_time_skipping_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> AsyncIterator[LiveConsole]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = test_settings(database_url, task_queue).model_copy(
        update={"public_base_url": base_url, "twilio_auth_token": SecretStr(TWILIO_AUTH_TOKEN)}
    )
    app = build_app(settings, temporal=fresh_time_skipping_env.client)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if serving.done():
                    serving.result()  # raises why it could not start
                await asyncio.sleep(0.02)
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as api,
            httpx.AsyncClient(timeout=5) as http,
            running_worker(fresh_time_skipping_env.client, settings, sessions, adapters, http),
        ):
            stack = Stack(
                api,
                fresh_time_skipping_env.client,
                sessions,
                task_queue,
                fresh_time_skipping_env,
                app.state.cart_relay,
            )
            yield LiveConsole(stack, base_url, TWILIO_AUTH_TOKEN)
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def new_context(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Makes fresh browser contexts (1280 by 800), closed at the end of the test."""
    contexts: list[Any] = []

    async def make(**options: Any) -> Any:
        context = await browser.new_context(**{"viewport": VIEWPORT, **options})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture
async def context(new_context: Callable[..., Awaitable[Any]]) -> Any:
    return await new_context()
