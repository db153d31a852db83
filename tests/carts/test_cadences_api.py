"""Cadences through the API: versions, the brief's default, durations, and the rule that a
running cart keeps the version it started with while new carts get the current one."""

from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = pytest.mark.shared_server


def journey(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            s["channel"],
            s["delay"],
            s["conditions"]["min_cart_value"],
            s["conditions"]["max_cart_value"],
            s["template"],
        )
        for s in body["steps"]
    ]


async def test_without_a_cadence_the_default_is_version_0(stack: Stack) -> None:
    retailer = await stack.retailer()

    current = (await retailer.get("/v1/cadence")).json()

    assert current["version"] == 0
    assert journey(current) == [
        ("onsite", "0s", None, None, None),
        ("email", "1h", None, None, None),
        ("sms", "1d", None, 200.0, None),
        ("agent_call", "1d", 200.0, None, None),
        ("email", "3d", None, None, "cart_last_chance"),
    ]
    assert (current["abandon_after"], current["expire_after"]) == ("30m", "7d")
    assert current["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert (await retailer.get("/v1/cadence/versions")).json() == []
    assert (await retailer.get("/v1/cadence/versions/0")).json() == current


async def test_every_put_is_a_new_version(stack: Stack) -> None:
    retailer = await stack.retailer()
    first = cadence({"channel": "onsite"}, {"channel": "email", "delay": "2h"})
    second = cadence({"channel": "email", "delay": "30m"}, {"channel": "sms", "delay": "1d"})

    v1 = await retailer.set_cadence(first)
    v2 = await retailer.set_cadence(second)

    assert (v1["version"], v2["version"]) == (1, 2)
    current = (await retailer.get("/v1/cadence")).json()
    assert current == v2
    assert journey(current) == [
        ("email", "30m", None, None, None),
        ("sms", "1d", None, None, None),
    ]
    assert (await retailer.get("/v1/cadence/versions")).json() == [v1, v2]
    old = (await retailer.get("/v1/cadence/versions/1")).json()
    assert [(s["channel"], s["delay"]) for s in old["steps"]] == [("onsite", "0s"), ("email", "2h")]
    missing = await retailer.get("/v1/cadence/versions/3")
    assert (missing.status_code, missing.json()["detail"]) == (404, "no cadence version 3")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("90s", "1m30s"),
        ("45m", "45m"),
        ("1h30m", "1h30m"),
        ("2d3h", "2d3h"),
        ("PT1H", "1h"),
        ("PT1H30M", "1h30m"),
        ("P1DT2H", "1d2h"),
        (" 1h ", "1h"),
        (3600, "1h"),
        (5400.0, "1h30m"),
        (0, "0s"),
    ],
)
async def test_durations_accept_compact_iso_and_seconds(
    stack: Stack, given: str | int | float, stored: str
) -> None:
    retailer = await stack.retailer()

    saved = await retailer.set_cadence(cadence({"channel": "sms", "delay": given}))

    assert saved["steps"][0]["delay"] == stored
    assert (await retailer.get("/v1/cadence")).json()["steps"][0]["delay"] == stored


async def _start_cart(retailer: RetailerClient, cart_id: str, email: str) -> None:
    accepted = await retailer.event(
        cart_id,
        "item_added",
        items=items(60.0),
        customer={**SHOPPER, "email": email, "phone": None},
        consent=ALL_CONSENT,
    )
    assert accepted["workflow_actions"] == ["queued"]  # the relay starts it


async def _versions(retailer: RetailerClient, cart_id: str) -> tuple[int, int]:
    """The version on the cart row, and the one the running workflow answers with."""
    body = await cart(retailer, cart_id)
    return body["cadence_version"], body["workflow"]["cadence_version"]


@pytest.mark.both_databases
async def test_a_running_cart_keeps_its_version_new_carts_get_the_new_one(stack: Stack) -> None:
    retailer = await stack.retailer()
    await _start_cart(retailer, "c1", "one@example.com")

    await retailer.set_cadence(
        cadence({"channel": "email", "delay": "10m", "template": "cart_last_chance"})
    )
    await _start_cart(retailer, "c2", "two@example.com")

    assert await _versions(retailer, "c1") == (0, 0)
    assert await _versions(retailer, "c2") == (1, 1)

    await retailer.set_cadence(cadence({"channel": "email", "delay": "20m"}))
    await _start_cart(retailer, "c3", "three@example.com")
    assert await _versions(retailer, "c1") == (0, 0)
    assert await _versions(retailer, "c2") == (1, 1)
    assert await _versions(retailer, "c3") == (2, 2)

    # And each runs its own journey: c1 the default one, c2 its single last-chance email.
    await retailer.result("c1")
    await retailer.result("c2")
    sent = [(m["cart_id"], m["channel"], m["template"]) for m in await retailer.outbox()]
    assert [m for m in sent if m[0] == "c1"] == [
        ("c1", "email", "cart_reminder"),
        ("c1", "email", "cart_last_chance"),  # no phone: the SMS step is skipped
    ]
    assert [m for m in sent if m[0] == "c2"] == [("c2", "email", "cart_last_chance")]
