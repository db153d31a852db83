"""``POST /v1/client/events:batch``: many events of many carts, as ``navigator.sendBeacon``
sends them (``text/plain`` JSON, the key in the query, the browser's id in the body), each
answered on its own, with the single route's semantics."""

import json
from typing import Any

import httpx
import pytest

from tests.carts.test_client_api import SHOP, client_post, event, publishable_key, visitor
from tests.conftest import Stack
from tests.support.api import cart, eventually
from tests.support.helpers import items
from winback.customers.signed_identity import sign_identity


async def beacon(
    stack: Stack,
    key: str | None,
    body: Any,
    *,
    origin: str | None = SHOP,
    content_type: str = "text/plain;charset=UTF-8",
) -> httpx.Response:
    """What ``navigator.sendBeacon(url, string)`` sends: no custom header, text/plain."""
    headers = {"Content-Type": content_type}
    if origin is not None:
        headers["Origin"] = origin
    return await stack.api.post(
        "/v1/client/events:batch",
        params={"key": key} if key else {},
        content=body if isinstance(body, bytes | str) else json.dumps(body),
        headers=headers,
    )


@pytest.mark.both_databases
async def test_a_batch_stores_each_event_once_in_order_and_says_what_became_of_each(
    stack: Stack,
) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    browser = visitor()
    first, again = event("item_added", items=items(10)), event("activity", page="/p/2")
    body = {
        "visitor": browser,
        "events": [
            {**first, "cart_id": "b1"},
            {**event("item_added", items=items(10, 20)), "cart_id": "b1"},  # the newer snapshot
            {**again, "cart_id": "b2"},
            {"cart_id": "b3", "event_id": "x", "type": "order_placed"},  # never from a browser
            {**first, "cart_id": "b1"},  # the same event again in the same batch
            {"cart_id": "b4", "event_id": "y", "type": "item_removed"},  # no items: the cart?
        ],
    }
    response = await beacon(stack, key, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert response.headers["access-control-allow-origin"] == SHOP
    assert [r["outcome"] for r in answer["results"]] == [
        "stored",
        "stored",
        "stored",
        "rejected",
        "duplicate",
        "rejected",
    ]
    assert "type" in answer["results"][3]["reason"]
    assert "needs 'items'" in answer["results"][5]["reason"]
    assert (answer["stored"], answer["duplicate"], answer["rejected"]) == (3, 1, 2)

    b1 = await cart(retailer, "b1")
    assert b1["value"] == 30 and len(b1["items"]) == 2  # body order: the last snapshot wins
    assert b1["workflow_id"] is None  # an anonymous edit tells Temporal nothing
    assert (await cart(retailer, "b2"))["last_page"] == "/p/2"
    assert (await retailer.get("/v1/carts/b3")).status_code == 404

    # Resent whole (a beacon retried by the browser): every event is a duplicate.
    resent = await beacon(stack, key, {**body, "events": body["events"][:3]})
    assert [r["outcome"] for r in resent.json()["results"]] == ["duplicate"] * 3
    assert (await cart(retailer, "b1"))["value"] == 30


async def test_a_batch_keeps_to_the_browsers_own_carts(stack: Stack) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    owner, other = visitor(), visitor()
    taken = await client_post(stack, key, "/carts/mine/events", event("activity"), owner)
    assert taken.status_code == 202, taken.text
    response = await beacon(
        stack,
        key,
        {
            "visitor": other,
            "events": [
                {**event("item_added", items=items(99)), "cart_id": "mine"},
                {**event("activity"), "cart_id": "theirs"},
            ],
        },
    )
    results = response.json()["results"]
    assert results[0]["outcome"] == "rejected" and "another browser" in results[0]["reason"]
    assert results[1]["outcome"] == "stored"
    assert (await cart(retailer, "mine"))["value"] == 0  # untouched


async def test_an_exit_intent_in_a_batch_starts_the_carts_workflow(stack: Stack) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    response = await beacon(
        stack,
        key,
        {
            "visitor": visitor(),
            "events": [
                {**event("item_added", items=items(40)), "cart_id": "leaving"},
                {**event("exit_intent"), "cart_id": "leaving"},
            ],
        },
    )
    assert response.json()["stored"] == 2
    started = await eventually(
        lambda: _workflow_id(retailer, "leaving"), what="the cart's workflow to start"
    )
    assert started == f"cart-{retailer.id}-leaving"


async def _workflow_id(retailer: Any, cart_id: str) -> str | None:
    return (await cart(retailer, cart_id))["workflow_id"]  # type: ignore[no-any-return]


async def test_bad_batches_are_clear_4xx(stack: Stack) -> None:
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    ok = {"visitor": visitor(), "events": [{**event("activity"), "cart_id": "c"}]}
    assert (await beacon(stack, None, ok)).status_code == 401
    assert (await beacon(stack, "pk_nope", ok)).status_code == 401
    assert (await beacon(stack, key, ok, origin="https://evil.example.net")).status_code == 403
    assert (await beacon(stack, key, ok, content_type="application/xml")).status_code == 415
    assert (await beacon(stack, key, b"{not json")).status_code == 422
    assert (await beacon(stack, key, {**ok, "visitor": "short"})).status_code == 422
    assert (await beacon(stack, key, {**ok, "events": []})).status_code == 422
    many = {**ok, "events": [{**event("activity"), "cart_id": "c"}] * 501}
    assert (await beacon(stack, key, many)).status_code == 422
    as_json = await beacon(stack, key, ok, content_type="application/json")
    assert as_json.status_code == 202 and as_json.json()["stored"] == 1


async def test_the_batch_route_is_in_the_openapi_document_with_both_content_types(
    stack: Stack,
) -> None:
    document = (await stack.api.get("/openapi.json")).json()
    body = document["paths"]["/v1/client/events:batch"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/plain"}
    refs = [v for v in _walk(body) if isinstance(v, str) and v.startswith("#/components/")]
    for ref in refs:  # every reference resolves
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]
    assert refs, "the event schema names its parts"


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _walk(value)]
    if isinstance(node, list):
        return [v for value in node for v in _walk(value)]
    return [node]


async def test_a_signed_contact_in_a_batch_counts_and_starts_the_workflow(stack: Stack) -> None:
    """A batch with an identity goes event by event through the single route's pipeline."""
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    secret = (await retailer.post("/v1/identity-secret", {})).json()["identity_secret"]
    signed = {
        "email": "ana@example.com",
        "email_signature": sign_identity(secret, "ana@example.com"),
    }
    response = await beacon(
        stack,
        key,
        {
            "visitor": visitor(),
            "events": [
                {**event("item_added", items=items(25)), "cart_id": "known"},
                {
                    **event("activity", identity=signed, consent={"email": True}),
                    "cart_id": "known",
                },
                {**event("activity"), "cart_id": "anonymous"},
            ],
        },
    )
    assert [r["outcome"] for r in response.json()["results"]] == ["stored"] * 3, response.text
    known = await eventually(
        lambda: _started(retailer, "known"), what="the known cart's workflow to start"
    )
    assert known["customer_email"] == "ana@example.com" and known["value"] == 25
    assert (await cart(retailer, "anonymous"))["workflow_id"] is None


async def _started(retailer: Any, cart_id: str) -> dict[str, Any] | None:
    seen = await cart(retailer, cart_id)
    return seen if seen["workflow_id"] else None


@pytest.mark.both_databases
async def test_an_event_that_changes_nothing_is_stored_and_one_with_a_nul_is_refused(
    stack: Stack,
) -> None:
    """A second ``idle`` leaves the cart as it was: stored, nothing written (it once made an
    empty UPDATE, a 503). Text with a NUL is refused on its own: SQLite would cut it short."""
    retailer = await stack.retailer()
    key = await publishable_key(retailer)
    browser = visitor()
    first = await beacon(
        stack,
        key,
        {
            "visitor": browser,
            "events": [
                {**event("item_added", items=items(10)), "cart_id": "b9"},
                {**event("idle"), "cart_id": "b9"},
            ],
        },
    )
    assert first.status_code == 202, first.text
    before = await cart(retailer, "b9")

    again = await beacon(
        stack, key, {"visitor": browser, "events": [{**event("idle"), "cart_id": "b9"}]}
    )
    assert again.status_code == 202, again.text
    assert [r["outcome"] for r in again.json()["results"]] == ["stored"]

    cut = {"sku": "A\x00B", "name": "Cut", "price": 1}
    refused = await beacon(
        stack,
        key,
        {"visitor": browser, "events": [{**event("item_added", items=[cut]), "cart_id": "b9"}]},
    )

    assert refused.status_code == 202, refused.text
    (result,) = refused.json()["results"]
    assert result["outcome"] == "rejected"
    assert "items.0.sku" in result["reason"] and "NUL" in result["reason"]
    after = await cart(retailer, "b9")
    assert (after["items"], after["value"]) == (before["items"], before["value"])
