"""Hostile input: outbound URLs into our network, templates that burn CPU, huge bodies and ids,
the default admin token, and metrics on the API port."""

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.messaging.sends import MessagingActivities
from tests.conftest import ADMIN_TOKEN, Stack
from tests.support.helpers import SHOPPER, items
from winback.composition.stack import build_app
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.platform.outbound_urls import UnsafeUrl, check_outbound_url, refusal
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.carts.types import OfferNudgeInput, StepSpec

# --- outbound URLs (SSRF) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.5", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    found = refusal(ipaddress.ip_address(address), allow_loopback=False)
    assert found is not None and why in found


def test_loopback_only_is_allowed_by_the_dev_setting() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) is not None
    assert refusal(ipaddress.ip_address("93.184.215.14"), allow_loopback=False) is None


async def test_a_url_is_pinned_to_the_address_it_was_checked_at() -> None:
    pinned = await check_outbound_url("https://93.184.215.14:8443/hooks?x=1")
    assert pinned.url == "https://93.184.215.14:8443/hooks?x=1"
    with pytest.raises(UnsafeUrl, match="loopback"):
        await check_outbound_url("http://localhost:9/x")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://10.0.0.5/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
    ],
)
async def test_a_retailer_cannot_point_its_webhook_into_our_network(
    stack: Stack, url: str, why: str
) -> None:
    retailer = await stack.retailer()
    response = await stack.api.patch(
        "/v1/retailer", headers=retailer.headers, json={"webhook_url": url}
    )
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"] and response.json()["errors"][0]["field"] == (
        "webhook_url"
    )
    created = await stack.api.post(
        "/v1/retailers",
        headers={"X-Admin-Token": ADMIN_TOKEN},
        json={"id": "hookshop", "name": "Hook", "webhook_url": url},
    )
    assert created.status_code == 422, created.text


async def test_the_url_is_checked_again_at_send_time(
    sessions: SessionFactory, httpserver: HTTPServer
) -> None:
    """Saved while allowed (or DNS said otherwise then): the worker still refuses to post."""
    from winback.carts.events import CartEventIn, record_event

    httpserver.expect_request("/nudges").respond_with_data("", status=204)
    async with session_scope(sessions) as session:
        shop = Retailer(
            id="shop", name="Shop", webhook_secret="s", webhook_url=httpserver.url_for("/nudges")
        )
        session.add(shop)
        await session.flush()
        event = CartEventIn.model_validate(
            {"event_id": "e1", "type": "item_added", "items": items(50.0), "customer": SHOPPER}
        )
        await record_event(session, retailer=shop, cart_id="c1", event=event)
    strict = MessagingActivities(sessions, {"email": OutboxAdapter()}, Settings())
    nudge = OfferNudgeInput(
        workflow_id="cart-shop-c1",
        retailer_id="shop",
        cart_id="c1",
        step=StepSpec(index=0, channel="onsite", template="onsite_help"),
        reason="idle",
        at=datetime(2026, 11, 23, 12, tzinfo=UTC),
    )

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(strict.offer_nudge, nudge)

    assert refused.value.type == "UnsafeWebhookUrl" and refused.value.non_retryable
    assert "loopback" in refused.value.message
    assert httpserver.log == []
    async with sessions() as session:  # the storefront can still poll the nudge
        assert len((await session.exec(select(Message))).all()) == 1


# --- templates ------------------------------------------------------------------------------


async def test_a_costly_template_is_a_422(stack: Stack) -> None:
    retailer = await stack.retailer()
    response = await retailer.put(
        "/v1/templates/x", {"channel": "sms", "body": "{{ (9**3000000) > 7 }}"}
    )
    assert response.status_code == 422, response.text
    assert "too large" in response.json()["detail"]
    for body in ("{{ 'x' * 100000000 }}", "{{ '%099999999d' % 1 }}"):
        response = await retailer.put("/v1/templates/x", {"channel": "sms", "body": body})
        assert response.status_code == 422, (body, response.text)


async def test_the_api_answers_while_a_hostile_template_is_stopped(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.put("/v1/templates/warm", {"channel": "sms", "body": "hi"})  # process started
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    saving = asyncio.create_task(retailer.put("/v1/templates/x", {"channel": "sms", "body": slow}))
    waits: list[float] = []
    while not saving.done():
        started = time.perf_counter()
        assert (await stack.api.get("/healthz")).status_code == 200
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)

    response = await saving
    assert response.status_code == 422, response.text
    assert "took longer than" in response.json()["detail"]
    assert len(waits) >= 5 and max(waits) < 1.0  # a generous bound: the loop never stalled


# --- sizes and ids ---------------------------------------------------------------------------


async def test_a_huge_body_is_a_413_before_it_is_parsed(stack: Stack) -> None:
    retailer = await stack.retailer()
    big = b'{"event_id": "e", "type": "idle", "pad": "' + b"x" * 2_000_000 + b'"}'
    response = await stack.api.post(
        "/v1/carts/c1/events",
        content=big,
        headers={**retailer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert "at most 1000000 bytes" in response.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(30):
            yield b"x" * 100_000

    response = await stack.api.post(
        "/v1/carts/c1/events",
        content=chunks(),
        headers={**retailer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_ids_out_of_range_are_a_4xx(stack: Stack, method: str) -> None:
    retailer = await stack.retailer()
    for customer_id in ("9223372036854775808", "2147483648", "0"):
        response = await stack.api.request(
            method,
            f"/v1/customers/{customer_id}/consent",
            headers=retailer.headers,
            json={"email": False},
        )
        assert response.status_code in (404, 422), response.text


async def test_task_data_is_bounded_below_temporals_payload_limit(stack: Stack) -> None:
    from tests.support.agents import add_agent

    agent = await add_agent(await stack.retailer(), "ana")
    response = await agent.post(
        "/v1/tasks/cart-x-c1/task-1/complete",
        {"outcome": "resolved", "data": {"notes": "x" * 40_000}},
    )
    assert response.status_code == 422, response.text
    assert "data" in response.json()["detail"] and "at most 32000" in response.json()["detail"]


# --- secrets and ops --------------------------------------------------------------------------


@pytest.mark.parametrize(("embedded", "expected"), [(False, 403), (True, 201)])
async def test_the_default_admin_token_works_only_in_the_embedded_stack(
    fresh_time_skipping_env: WorkflowEnvironment, database_url: str, embedded: bool, expected: int
) -> None:
    settings = Settings(database_url=database_url, embedded_dev=embedded, api_metrics_port=None)
    app = build_app(settings, temporal=fresh_time_skipping_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        response = await api.post(
            "/v1/retailers",
            headers={"X-Admin-Token": "dev-admin-token"},
            json={"id": "acme", "name": "Acme"},
        )
    assert response.status_code == expected, response.text


async def test_metrics_are_not_on_the_api_port(stack: Stack) -> None:
    assert (await stack.api.get("/metrics")).status_code == 404
    assert "/metrics" not in (await stack.api.get("/openapi.json")).json()["paths"]
