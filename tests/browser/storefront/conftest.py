"""Browser fixtures: Chromium from the distribution (never downloaded), a live API with its
worker on the time-skipping Temporal server, and a second web server playing the retailer's
own store on another origin.

- ``browser``: one Chromium per session (``/usr/bin/chromium``; the tests skip without it unless
  ``CI`` is set, then they fail).
- ``page``: a fresh context per test (no cookies carried over).
- ``live``: uvicorn serving the real app from ``build_app`` (the demo store on) on a free port.
- ``store``: a page on ``http://127.0.0.1:<other port>`` with the snippet installed.
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ADMIN_TOKEN, test_settings
from winback.composition.stack import build_app, running_worker
from winback.messaging.channels import ChannelAdapter
from winback.platform.db import SessionFactory
from winback.platform.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1100, "height": 720})
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    assert errors == [], f"errors in the page: {errors}"


@asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[None]:
    """Runs ``app`` with uvicorn on 127.0.0.1:``port`` until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@dataclass
class Live:
    """The API on a real port, and the database and settings behind it."""

    url: str
    settings: Settings
    sessions: SessionFactory

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def retailer(self, name: str, origins: list[str]) -> dict[str, str]:
        """A retailer with a publishable key for ``origins``: its id, secret and public keys."""
        async with self.http() as http:
            made = await http.post(
                "/v1/retailers",
                json={"id": name, "name": name.title()},
                headers={"X-Admin-Token": ADMIN_TOKEN},
            )
            assert made.status_code == 201, made.text
            api_key = made.json()["api_key"]
            await http.put(
                "/v1/cadence",
                headers={"X-API-Key": api_key},
                json={
                    "quiet_hours": {"start": "00:00", "end": "00:00"},
                    "steps": [{"channel": "onsite", "offer": ["chat", "callback"]}],
                },
            )
            key = await http.post(
                "/v1/publishable-keys",
                headers={"X-API-Key": api_key},
                json={"allowed_origins": origins},
            )
            assert key.status_code == 201, key.text
        return {"id": name, "api_key": api_key, "key": key.json()["key"]}


@pytest.fixture
async def live(
    fresh_time_skipping_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> AsyncIterator[Live]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = test_settings(database_url, task_queue).model_copy(
        update={"demo_store": True, "public_base_url": url}
    )
    app = build_app(settings, temporal=fresh_time_skipping_env.client)
    async with (
        httpx.AsyncClient(timeout=5) as http,
        running_worker(fresh_time_skipping_env.client, settings, sessions, adapters, http),
        serve(app, port),
    ):
        yield Live(url, settings, sessions)


STORE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Retailer store</title></head>
<body>
  <h1>Retailer store</h1>
  <p id="count">0 items</p>
  <button id="add" type="button">Add to cart</button>
  <script>
    var items = [];
    document.getElementById("add").onclick = function () {
      items.push({sku: "S-" + items.length, name: "Sock", price: 5, quantity: 1});
      document.getElementById("count").textContent = items.length + " items";
      if (window.winback) { window.winback.cart.update(items); }
    };
  </script>
  <script src="{script}/winback/v1/winback.js" data-key="{key}" data-api="{api}"
          data-min-time="0" data-idle="600" data-consent="{consent}" async></script>
</body></html>"""


@dataclass
class Store:
    """The retailer's own site, on another port: ``url(...)`` builds its page's address."""

    port: int

    def url(
        self, *, host: str = "127.0.0.1", key: str, api: str, script: str, consent: str = ""
    ) -> str:
        query = httpx.QueryParams({"key": key, "api": api, "script": script, "consent": consent})
        return f"http://{host}:{self.port}/store?{query}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async def page(request: Request) -> HTMLResponse:
        q = request.query_params
        return HTMLResponse(
            STORE_PAGE.replace("{script}", q["script"])
            .replace("{key}", q["key"])
            .replace("{api}", q["api"])
            .replace("{consent}", q.get("consent", ""))
        )

    port = free_port()
    async with serve(Starlette(routes=[Route("/store", page)]), port):
        yield Store(port)


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Any]:
    """Takes a screenshot (so a broken page shows in the test's output); with
    ``WINBACK_SCREENSHOTS=1`` it refreshes the README's ones under docs/screenshots/."""
    target = SCREENSHOTS if os.environ.get("WINBACK_SCREENSHOTS") == "1" else tmp_path

    async def take(page: Page, name: str, **kwargs: Any) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        await page.screenshot(path=str(path), **kwargs)
        return path

    return take
