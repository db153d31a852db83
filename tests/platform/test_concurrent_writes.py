"""Writes that meet other writes: never a 5xx other than a 503 with Retry-After, never a 409
for two PUTs of the same thing at once, and a 2xx only once committed; on both databases.

Found by posting each write route's requests in bursts: two saves of a cadence (or alert
rules) at once raced for the next version number, two PUTs of a new queue or template for its
name, two first PUTs of a Shopify connection, and the losers got ``409 ... retry it`` (10 of
12 cadence saves). A SQLite write lock held
past the busy timeout ("database is locked") was a 500 outside the events route."""

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ADMIN_TOKEN, Stack
from tests.conftest import test_settings as settings_for
from tests.support.helpers import cadence

pytestmark = pytest.mark.both_databases
BURST = 10
EMAIL = {"channel": "email", "delay": "1h"}


async def test_cadence_saves_at_once_all_succeed_as_consecutive_versions(stack: Stack) -> None:
    retailer = await stack.retailer()

    answers = await asyncio.gather(
        *[retailer.put("/v1/cadence", cadence(EMAIL)) for _ in range(BURST)]
    )

    assert [a.status_code for a in answers] == [201] * BURST, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(1, BURST + 1))
    versions = (await retailer.get("/v1/cadence/versions")).json()
    assert [v["version"] for v in versions if v["version"] > 0] == list(range(1, BURST + 1))
    assert (await retailer.get("/v1/cadence")).json()["version"] == BURST


async def test_puts_of_one_new_queue_at_once_create_it_once_and_replace_it(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()

    answers = await asyncio.gather(
        *[retailer.put("/v1/queues/vip", {"skills": [f"lang:l{i}"]}) for i in range(BURST)]
    )

    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 200: BURST - 1}, [a.text for a in answers]
    listed = [q for q in (await retailer.get("/v1/queues")).json() if q["name"] == "vip"]
    assert len(listed) == 1


async def test_puts_of_one_new_template_at_once_all_succeed(stack: Stack) -> None:
    retailer = await stack.retailer()

    answers = await asyncio.gather(
        *[
            retailer.put("/v1/templates/promo", {"channel": "sms", "body": f"Hi {i}"})
            for i in range(BURST)
        ]
    )

    assert [a.status_code for a in answers] == [200] * BURST, [a.text for a in answers]
    mine = [t for t in (await retailer.get("/v1/templates")).json() if t["name"] == "promo"]
    assert len(mine) == 1 and mine[0]["body"] in {f"Hi {i}" for i in range(BURST)}


async def test_first_puts_of_a_store_connection_at_once_all_succeed(stack: Stack) -> None:
    retailer = await stack.retailer()

    answers = await asyncio.gather(
        *[
            retailer.put(
                "/v1/integrations/shopify",
                {"shop_domain": "boots.myshopify.com", "webhook_secret": f"secret-{i:04d}"},
            )
            for i in range(BURST)
        ]
    )

    assert [a.status_code for a in answers] == [200] * BURST, [a.text for a in answers]
    read = await retailer.get("/v1/integrations/shopify")
    assert read.json()["shop"] == "boots.myshopify.com"


# --- SQLite's write lock held past the busy timeout -----------------------------------------


@pytest.fixture
async def impatient_api(
    fresh_time_skipping_env: WorkflowEnvironment, database_url: str, task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with a busy timeout of 0.2 s instead of 30 (same code path, less wait)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock; PostgreSQL writers lock rows")
    from winback.composition.stack import build_app

    settings = settings_for(database_url, task_queue).model_copy(
        update={"database_busy_timeout_seconds": 0.2}
    )
    app = build_app(settings, temporal=fresh_time_skipping_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
    ):
        yield api


async def test_a_write_that_waits_out_the_busy_timeout_is_a_503_with_retry_after(
    impatient_api: httpx.AsyncClient, database_url: str
) -> None:
    created = await impatient_api.post(
        "/v1/retailers",
        json={"id": "busy", "name": "Busy"},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    assert created.status_code == 201, created.text
    headers = {"X-API-Key": created.json()["api_key"]}
    path = database_url.split("///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)  # another process's long write
    other.execute("BEGIN IMMEDIATE")
    try:
        patched = await impatient_api.patch("/v1/retailer", json={"name": "New"}, headers=headers)
        saved = await impatient_api.put("/v1/cadence", json=cadence(EMAIL), headers=headers)
    finally:
        other.execute("ROLLBACK")
        other.close()

    for answer in (patched, saved):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        assert "busy" in answer.json()["detail"]
    assert (await impatient_api.get("/v1/retailer", headers=headers)).json()["name"] == "Busy"

    again = await impatient_api.patch("/v1/retailer", json={"name": "New"}, headers=headers)
    assert again.status_code == 200
    assert (await impatient_api.get("/v1/retailer", headers=headers)).json()["name"] == "New"
