"""The client endpoints winback.js calls with a publishable key: what a page may do, and what
it can never read (other carts, personal data, configuration)."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RetailerClient, Stack
from tests.conftest import test_settings as settings_for
from tests.support.agents import add_agent
from tests.support.api import cart, eventually
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.composition.stack import build_app
from winback.customers.signed_identity import sign_identity

SHOP = "https://shop.example.com"
OTHER = "https://evil.example.net"
NUDGE_ONLY = cadence({"channel": "onsite", "offer": ["chat", "callback"]})


def visitor() -> str:
    return uuid.uuid4().hex


async def publishable_key(retailer: RetailerClient, origins: list[str] | None = None) -> str:
    response = await retailer.post("/v1/publishable-keys", {"allowed_origins": origins or [SHOP]})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def client_post(
    stack: Stack, key: str, path: str, body: Any, browser: str, origin: str = SHOP
) -> httpx.Response:
    return await stack.api.post(
        f"/v1/client{path}",
        params={"key": key},
        json=body,
        headers={"Origin": origin, "X-Winback-Visitor": browser},
    )


async def client_get(
    stack: Stack, key: str, path: str, browser: str, origin: str = SHOP
) -> httpx.Response:
    return await stack.api.get(
        f"/v1/client{path}",
        params={"key": key},
        headers={"Origin": origin, "X-Winback-Visitor": browser},
    )


def event(type: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": type, **fields}


async def nudge_of(stack: Stack, key: str, cart_id: str, browser: str) -> dict[str, Any] | None:
    response = await client_get(stack, key, f"/carts/{cart_id}/nudge", browser)
    assert response.status_code == 200, response.text
    return response.json()["nudge"]  # type: ignore[no-any-return]


@pytest.mark.both_databases
async def test_publishable_keys_are_created_listed_and_rotated(stack: Stack) -> None:
    retailer = await stack.retailer()
    response = await retailer.post(
        "/v1/publishable-keys",
        {"name": "web", "allowed_origins": ["https://Shop.Example.com/", "http://localhost:3000"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["key"].startswith(f"pk_{retailer.id}_")
    assert created["allowed_origins"] == ["http://localhost:3000", SHOP]

    bad = await retailer.post("/v1/publishable-keys", {"allowed_origins": ["https://x.com/path"]})
    assert bad.status_code == 422 and "allowed_origins" in bad.json()["detail"]

    rotated = await stack.api.post(
        f"/v1/publishable-keys/{created['id']}/rotate",
        params={"grace_hours": 0},
        headers=retailer.headers,
    )
    assert rotated.status_code == 201, rotated.text
    fresh = rotated.json()
    assert fresh["key"] != created["key"]
    assert fresh["allowed_origins"] == created["allowed_origins"]
    listed = (await retailer.get("/v1/publishable-keys")).json()
    assert [k["key"] for k in listed] == [fresh["key"]]  # no grace: the old key is gone

    old = await client_post(stack, created["key"], "/carts/c1/events", event("activity"), visitor())
    assert old.status_code == 401
    ok = await client_post(stack, fresh["key"], "/carts/c1/events", event("activity"), visitor())
    assert ok.status_code == 202, ok.text


async def test_cors_only_for_the_keys_origins(stack: Stack) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    allowed = await stack.api.options(
        "/v1/client/carts/c1/events", params={"key": key}, headers={"Origin": SHOP, **preflight}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "X-Winback-Visitor" in allowed.headers["access-control-allow-headers"]

    refused = await stack.api.options(
        "/v1/client/carts/c1/events", params={"key": key}, headers={"Origin": OTHER, **preflight}
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers

    posted = await client_post(stack, key, "/carts/c1/events", event("activity"), visitor(), OTHER)
    assert posted.status_code == 403 and "not allowed" in posted.json()["detail"]
    assert "access-control-allow-origin" not in posted.headers
    assert (await retailer.get("/v1/carts/c1")).status_code == 404  # nothing was written

    # The retailer's secret routes send no CORS headers at all.
    secret = await stack.api.get("/v1/retailer", headers={**retailer.headers, "Origin": SHOP})
    assert "access-control-allow-origin" not in secret.headers


async def test_the_publishable_key_cannot_read_other_carts_pii_or_configuration(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    await retailer.set_cadence(NUDGE_ONLY)
    key = await publishable_key(retailer)
    mine, theirs = visitor(), visitor()
    # The retailer's backend knows who the shopper is; the browser does not repeat it.
    await retailer.event(
        "c-pii", "item_added", items=items(40), customer=SHOPPER, consent=ALL_CONSENT
    )
    taken = await client_post(
        stack, key, "/carts/c-pii/events", event("exit_intent", items=items(40)), mine
    )
    assert taken.status_code == 202, taken.text
    nudge = await eventually(lambda: nudge_of(stack, key, "c-pii", mine), what="the nudge")
    assert nudge["offer"] == ["chat", "callback"]

    # Another browser with the same key: the cart looks empty, and it cannot write to it.
    assert await nudge_of(stack, key, "c-pii", theirs) is None
    foreign = await client_post(stack, key, "/carts/c-pii/events", event("activity"), theirs)
    assert foreign.status_code == 404
    reply = await client_post(stack, key, "/carts/c-pii/nudge/reply", {"reply": "dismiss"}, theirs)
    assert reply.status_code == 409

    # Nothing a client route answers carries the shopper's contact.
    seen = json.dumps([taken.json(), nudge, foreign.json(), reply.json()])
    for secret in ("ana@example.com", "+14155552671", "Ana"):
        assert secret not in seen

    # The publishable key opens none of the retailer's routes.
    for path in (
        "/v1/carts/c-pii",
        "/v1/carts/c-pii/nudges",
        "/v1/outbox",
        "/v1/cadence",
        "/v1/reports/cart-recovery",
        "/v1/retailer",
        "/v1/publishable-keys",
    ):
        response = await stack.api.get(path, headers={"X-API-Key": key, "Origin": SHOP})
        assert response.status_code == 401, path
        response = await stack.api.get(path, params={"key": key}, headers={"Origin": SHOP})
        assert response.status_code == 401, path

    # Orders and opt-outs come from the backend, never from a page.
    order = await client_post(
        stack,
        key,
        "/carts/c-pii/events",
        event("order_placed", order={"order_id": "o1", "value": 1}),
        mine,
    )
    assert order.status_code == 422


async def test_unsigned_contact_is_ignored_and_a_signed_one_counts(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.set_cadence(NUDGE_ONLY)
    key = await publishable_key(retailer)
    created = await retailer.post("/v1/identity-secret", {})
    assert created.status_code == 201, created.text
    secret = created.json()["identity_secret"]
    assert (await retailer.get("/v1/identity-secret")).json()["set"] is True

    typed = {"email": "victim@example.com", "phone": "+14155552671", "name": "Victim"}
    unsigned = await client_post(
        stack,
        key,
        "/carts/c-u/events",
        event("item_added", items=items(30), identity=typed, consent=ALL_CONSENT),
        visitor(),
    )
    assert unsigned.status_code == 202, unsigned.text
    assert unsigned.json()["identity"] == "unsigned"
    assert sorted(unsigned.json()["ignored"]) == ["email", "name", "phone"]
    seen = await cart(retailer, "c-u")
    assert seen["customer_email"] is None and seen["customer_phone"] is None

    signed = {
        "email": "Ana@Example.com",
        "email_signature": sign_identity(secret, "Ana@Example.com"),
        "name": "Ana",
        "locale": "es",
    }
    answer = await client_post(
        stack,
        key,
        "/carts/c-s/events",
        event("item_added", items=items(30), identity=signed, consent={"email": True}),
        visitor(),
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["identity"] == "signed" and answer.json()["ignored"] == []
    assert (await cart(retailer, "c-s"))["customer_email"] == "ana@example.com"

    forged = {**signed, "email": "other@example.com"}
    refused = await client_post(
        stack,
        key,
        "/carts/c-f/events",
        event("item_added", items=items(30), identity=forged),
        visitor(),
    )
    assert refused.json()["identity"] == "unsigned"
    assert (await cart(retailer, "c-f"))["customer_email"] is None


@pytest.mark.both_databases
async def test_callback_from_the_nudge_opens_a_task_with_the_cart_and_number(
    stack: Stack,
) -> None:
    retailer = await stack.retailer(country="ES")
    await retailer.set_cadence(NUDGE_ONLY)
    agent = await add_agent(retailer, "lucia")
    key = await publishable_key(retailer)
    browser = visitor()
    await client_post(
        stack, key, "/carts/c-cb/events", event("item_added", items=items(55)), browser
    )
    await client_post(stack, key, "/carts/c-cb/events", event("idle"), browser)
    await eventually(lambda: nudge_of(stack, key, "c-cb", browser), what="the nudge")

    no_consent = await client_post(
        stack,
        key,
        "/carts/c-cb/nudge/reply",
        {"reply": "callback", "phone": "612 345 678"},
        browser,
    )
    assert no_consent.status_code == 422 and "consent" in no_consent.json()["detail"]
    bad_phone = await client_post(
        stack,
        key,
        "/carts/c-cb/nudge/reply",
        {"reply": "callback", "phone": "12", "consent": True},
        browser,
    )
    assert bad_phone.status_code == 422 and "phone" in bad_phone.json()["detail"]

    done = await client_post(
        stack,
        key,
        "/carts/c-cb/nudge/reply",
        {"reply": "callback", "phone": "612 345 678", "consent": True},
        browser,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"reply": "callback", "callback_requested": True}
    tasks = await eventually(agent.tasks, what="the callback task")
    assert tasks[0]["kind"] == "callback"
    task = await agent.task(tasks[0]["id"])
    assert task["details"]["callback_phone"] == "+34612345678"
    assert task["details"]["items"][0]["price"] == 55
    assert await nudge_of(stack, key, "c-cb", browser) is None  # answered

    lookup = await agent.get("/v1/customers/lookup", params={"phone": "612 345 678"})
    assert lookup.status_code == 200, lookup.text
    callback_carts = lookup.json()["callback_carts"]
    assert [c["cart_id"] for c in callback_carts] == ["c-cb"]
    assert callback_carts[0]["open_tasks"][0]["id"] == tasks[0]["id"]
    # The number never became a contact: no automated message can use it.
    assert lookup.json()["customers"] == []


async def test_rate_limits_answer_429_with_retry_after(
    stack: Stack, database_url: str, task_queue: str
) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    settings = settings_for(database_url, task_queue).model_copy(
        update={"client_rate_limit_per_address": "3/minute"}
    )
    app = build_app(settings, temporal=stack.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        headers = {"Origin": SHOP, "X-Winback-Visitor": visitor()}
        codes = []
        for _ in range(4):
            response = await api.post(
                "/v1/client/carts/c-rl/events",
                params={"key": key},
                json=event("activity"),
                headers=headers,
            )
            codes.append(response.status_code)
        assert codes == [202, 202, 202, 429]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.headers["access-control-allow-origin"] == SHOP  # the page can read it


async def test_the_snippet_is_served_with_cache_headers(stack: Stack) -> None:
    response = await stack.api.get("/winback/v1/winback.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age=86400" in response.headers["cache-control"]
    again = await stack.api.get(
        "/winback/v1/winback.js", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert len(response.content) < 40_000  # small: no framework
    assert (await stack.api.get("/demo/shop")).status_code == 404  # only in `winback dev`


async def test_concurrent_first_events_of_one_cart_are_all_taken(stack: Stack) -> None:
    """A page that sends its page view and its first item at once creates the cart twice: the
    loser retries on the cart the winner made (it was a 500 when the retry read the retailer)."""
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    browser = visitor()
    answers = await asyncio.gather(
        *(
            client_post(stack, key, "/carts/c-race/events", event("activity"), browser)
            for _ in range(6)
        )
    )
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]


async def test_bad_client_input_is_a_4xx_naming_the_field(stack: Stack) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    secret = (await retailer.post("/v1/identity-secret", {})).json()["identity_secret"]
    no_visitor = await stack.api.post(
        "/v1/client/carts/c1/events",
        params={"key": key},
        json=event("activity"),
        headers={"Origin": SHOP},
    )
    assert no_visitor.status_code == 422 and "X-Winback-Visitor" in no_visitor.json()["detail"]
    no_key = await stack.api.post("/v1/client/carts/c1/events", json=event("activity"))
    assert no_key.status_code == 401 and "key" in no_key.json()["detail"]
    bad_items = await client_post(
        stack, key, "/carts/c1/events", event("item_added", items=[{"sku": "x"}]), visitor()
    )
    assert bad_items.status_code == 422 and "items.0" in bad_items.json()["detail"]
    no_items = await client_post(stack, key, "/carts/c1/events", event("item_added"), visitor())
    assert no_items.status_code == 422 and "needs 'items'" in no_items.json()["detail"]
    signed_garbage = {
        "email": "not-an-email",
        "email_signature": sign_identity(secret, "not-an-email"),
    }
    bad_email = await client_post(
        stack, key, "/carts/c1/events", event("activity", identity=signed_garbage), visitor()
    )
    assert bad_email.status_code == 422 and "identity" in bad_email.json()["detail"]
    bad_cart = await client_post(stack, key, "/carts/a b/events", event("activity"), visitor())
    assert bad_cart.status_code == 422


async def test_another_retailers_key_sees_another_cart(stack: Stack) -> None:
    alpha, beta = await stack.retailer("Alpha"), await stack.retailer("Beta")
    await alpha.set_cadence(NUDGE_ONLY)
    alpha_key, beta_key = await publishable_key(alpha), await publishable_key(beta)
    browser = visitor()
    await client_post(stack, alpha_key, "/carts/c1/events", event("exit_intent"), browser)
    await eventually(lambda: nudge_of(stack, alpha_key, "c1", browser), what="alpha's nudge")
    assert await nudge_of(stack, beta_key, "c1", browser) is None
    assert (await beta.get("/v1/carts/c1")).status_code == 404
