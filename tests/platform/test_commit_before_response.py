"""A 2xx means committed: the answer leaves only after the transaction, and the next request
reads what the previous one wrote (read-your-writes), on both databases."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ADMIN_TOKEN
from tests.conftest import test_settings as settings_for
from winback.composition.stack import build_app
from winback.platform.db import SessionFactory
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases

ASGIApp = Any


@pytest.fixture
async def app(
    fresh_time_skipping_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
) -> AsyncIterator[ASGIApp]:
    built = build_app(
        settings_for(database_url, task_queue), temporal=fresh_time_skipping_env.client
    )
    async with built.router.lifespan_context(built):
        yield built


async def new_retailer(api: httpx.AsyncClient, retailer_id: str) -> dict[str, str]:
    response = await api.post(
        "/v1/retailers",
        json={"id": retailer_id, "name": "Acme"},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["api_key"]}


async def test_patch_then_get_reads_the_new_value_every_time(app: ASGIApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        headers = await new_retailer(api, "ryw")
        for i in range(100):
            patched = await api.patch("/v1/retailer", json={"name": f"Store {i}"}, headers=headers)
            assert patched.status_code == 200, patched.text
            read = await api.get("/v1/retailer", headers=headers)
            assert read.json()["name"] == f"Store {i}"


async def test_the_answer_leaves_only_after_the_commit(
    app: ASGIApp, sessions: SessionFactory
) -> None:
    """At the moment the status line is sent, another connection already sees the change."""
    seen_at_response: list[str] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_look(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "PATCH":
                async with sessions() as other:
                    row = await other.get(Retailer, "commit_first")
                    assert row is not None
                    seen_at_response.append(row.name)
            await send(message)

        await app(scope, receive, send_and_look)

    transport = httpx.ASGITransport(app=watching)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        headers = await new_retailer(api, "commit_first")
        patched = await api.patch("/v1/retailer", json={"name": "Renamed"}, headers=headers)

    assert patched.status_code == 200, patched.text
    assert seen_at_response == ["Renamed"]
