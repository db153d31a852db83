"""Rate limits per credential and per client address: 429 with Retry-After, on the retailer
API, the agents' routes and the providers' webhooks alike."""

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ADMIN_TOKEN
from winback.composition.stack import build_app
from winback.platform.settings import Settings


@pytest.fixture
async def api(
    fresh_time_skipping_env: WorkflowEnvironment, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        api_metrics_port=None,
        rate_limit_per_key="3/minute",
        rate_limit_per_address="8/minute",
    )
    app = build_app(settings, temporal=fresh_time_skipping_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


def _limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert "rate limit" in response.json()["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60
    return retry_after


async def test_a_key_gets_its_share_then_a_429_with_retry_after(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/retailers", headers={"X-Admin-Token": ADMIN_TOKEN}, json={"id": "acme", "name": "A"}
    )
    key = {"X-API-Key": created.json()["api_key"]}

    answers = [(await api.get("/v1/retailer", headers=key)).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    _limited(await api.get("/v1/retailer", headers=key))
    # Another credential has its own share (until the address's runs out).
    assert (await api.get("/v1/retailer", headers={"X-API-Key": "made-up"})).status_code == 401
    assert (await api.get("/healthz")).status_code == 200  # never limited


async def test_made_up_keys_do_not_dodge_the_per_address_limit(api: httpx.AsyncClient) -> None:
    statuses = [
        (await api.get("/v1/retailer", headers={"X-API-Key": f"guess-{i}"})).status_code
        for i in range(8)
    ]
    assert statuses == [401] * 8
    _limited(await api.get("/v1/retailer", headers={"X-API-Key": "guess-9"}))


async def test_webhooks_are_limited_per_retailer(api: httpx.AsyncClient) -> None:
    path = "/v1/webhooks/twilio/acme/sms-inbound"
    statuses = [(await api.post(path, data={"Body": "hi"})).status_code for _ in range(3)]
    assert 429 not in statuses
    _limited(await api.post(path, data={"Body": "hi"}))
    other = await api.post("/v1/webhooks/twilio/other/sms-inbound", data={"Body": "hi"})
    assert other.status_code != 429
