"""Bad input: a 4xx whose `detail` names the field and the problem, never a 500, and nothing
written. Each test walks a table of cases on one stack (cheaper than a stack per case)."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, select

from tests.conftest import ADMIN_TOKEN, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.carts.discount_models import DiscountCode
from winback.carts.models import Cart, CartEvent
from winback.customers.models import Customer
from winback.messaging.template_models import MessageTemplate
from winback.platform.clock import utcnow
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases

Case = tuple[str, Any, tuple[str, ...]]  # name, request body, fragments the detail must contain


def rejected(response: httpx.Response, status: int, *fragments: str, case: str) -> None:
    """A 4xx with a readable `detail` that mentions every fragment."""
    assert response.status_code == status, f"{case}: {response.status_code} {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail, f"{case}: {detail!r}"
    for fragment in fragments:
        assert fragment in detail, f"{case}: {fragment!r} not in {detail!r}"


async def count(stack: Stack, *tables: type[SQLModel]) -> dict[str, int]:
    async with stack.sessions() as session:
        return {
            t.__name__: int((await session.exec(select(func.count()).select_from(t))).one())
            for t in tables
        }


# --- cadences ----------------------------------------------------------------------------

EMAIL_1H = {"channel": "email", "delay": "1h"}
CADENCE_CASES: list[Case] = [
    (
        "first email after 24h",
        cadence({"channel": "onsite"}, {"channel": "email", "delay": "25h"}),
        ("steps[1].delay", "within 24h", "1d1h"),
    ),
    (
        "a later email may not rescue a late first one",
        cadence({"channel": "sms", "delay": "1h"}, {"channel": "email", "delay": "2d"}),
        ("steps[1].delay", "within 24h"),
    ),
    ("unknown channel", cadence({"channel": "fax"}), ("steps.0.channel", "'sms'")),
    ("duration 'soon'", cadence({"channel": "email", "delay": "soon"}), ("steps.0.delay", "soon")),
    ("negative duration", cadence({"channel": "email", "delay": -60}), ("negative",)),
    ("boolean duration", cadence({"channel": "email", "delay": True}), ("steps.0.delay",)),
    ("huge duration", cadence({"channel": "email", "delay": 1e20}), ("too long",)),
    ("huge day count", cadence({"channel": "email", "delay": "99999999999d"}), ("too long",)),
    (
        "an SLA on an email",
        cadence({**EMAIL_1H, "sla": "4h"}),
        ("steps[0]", "sla, remind_before, skills and queue are for agent_call"),
    ),
    (
        "an unknown skill",
        cadence({"channel": "agent_call", "delay": "1d", "skills": ["shoes"]}),
        ("steps.0.skills", "category:"),
    ),
    ("unknown top-level field", {**cadence(EMAIL_1H), "colour": "red"}, ("colour", "Extra")),
    ("unknown step field", cadence({**EMAIL_1H, "wait": "1h"}), ("steps.0.wait", "Extra")),
    (
        "decreasing delays",
        cadence({"channel": "email", "delay": "2h"}, {"channel": "sms", "delay": "1h"}),
        ("steps[1].delay", "before the previous step's 2h"),
    ),
    (
        "min >= max cart value",
        cadence({**EMAIL_1H, "conditions": {"min_cart_value": 200, "max_cart_value": 100}}),
        ("steps.0.conditions", "min_cart_value must be below max_cart_value"),
    ),
    (
        "negative cart value",
        cadence({**EMAIL_1H, "conditions": {"min_cart_value": -1}}),
        ("steps.0.conditions.min_cart_value",),
    ),
    (
        "discount with code and pool",
        cadence({**EMAIL_1H, "discount": {"code": "X10", "pool": "spring"}}),
        ("steps.0.discount", "exactly one of 'code' or 'pool'"),
    ),
    ("empty discount", cadence({**EMAIL_1H, "discount": {}}), ("steps.0.discount",)),
    (
        "two onsite steps",
        cadence({"channel": "onsite"}, {"channel": "onsite"}, EMAIL_1H),
        ("at most one 'onsite' step",),
    ),
    (
        "step after expiry",
        cadence(EMAIL_1H, {"channel": "sms", "delay": "3d"}, expire_after="2d"),
        ("steps[1].delay", "after the cart expires"),
    ),
    ("no steps", cadence(), ("steps",)),
    ("abandon after 0s", cadence(EMAIL_1H, abandon_after="0s"), ("abandon_after", "between")),
    ("expire after 90d", cadence(EMAIL_1H, expire_after="90d"), ("expire_after", "between")),
    (
        "quiet hours at 25:00",
        cadence(EMAIL_1H, quiet_hours={"start": "25:00", "end": "08:00"}),
        ("quiet_hours.start",),
    ),
    (
        "cap of zero messages",
        cadence(EMAIL_1H, frequency_cap={"max_messages": 0}),
        ("frequency_cap.max_messages",),
    ),
    ("unknown offer", cadence({"channel": "onsite", "offer": ["coupon"]}), ("steps.0.offer.0",)),
    ("not an object", ["email"], ("request",)),
]


async def test_bad_cadences_are_rejected_and_keep_the_current_version(stack: Stack) -> None:
    retailer = await stack.retailer()
    stored = await retailer.set_cadence(cadence(EMAIL_1H))

    for name, body, fragments in CADENCE_CASES:
        rejected(await retailer.put("/v1/cadence", body), 422, *fragments, case=name)

        assert (await retailer.get("/v1/cadence")).json() == stored, name
        assert (await retailer.get("/v1/cadence/versions")).json() == [stored], name


async def test_cadence_version_out_of_range(stack: Stack) -> None:
    retailer = await stack.retailer()
    for version in ("-1", "2147483648", "1" + "0" * 30, "one"):
        rejected(
            await retailer.get(f"/v1/cadence/versions/{version}"), 422, "version", case=version
        )
    rejected(await retailer.get("/v1/cadence/versions/7"), 404, "no cadence version 7", case="7")


# --- cart events -------------------------------------------------------------------------


def event(type: str = "activity", **fields: Any) -> dict[str, Any]:
    return {"event_id": "bad-1", "type": type, **fields}


def _long_ago(days: int) -> str:
    return (utcnow() - timedelta(days=days)).isoformat()


EVENT_CASES: list[Case] = [
    ("unknown type", event("teleport"), ("type", "'item_added'")),
    ("no event_id", {"type": "activity"}, ("event_id", "Field required")),
    ("empty event_id", event(event_id=""), ("event_id",)),
    ("item_added without items", event("item_added"), ("'item_added' needs 'items'",)),
    ("item_removed without items", event("item_removed"), ("'item_removed' needs 'items'",)),
    ("order_placed without order", event("order_placed"), ("'order_placed' needs 'order'",)),
    (
        "order without an id",
        event("order_placed", order={"value": 10}),
        ("order.order_id", "Field required"),
    ),
    ("nudge_reply without reply", event("nudge_reply"), ("'nudge_reply' needs 'reply'",)),
    ("unknown reply", event("nudge_reply", reply="maybe"), ("reply",)),
    (
        "negative price",
        event("item_added", items=[{"sku": "S", "name": "Shoe", "price": -5}]),
        ("items.0.price", "greater than or equal to 0"),
    ),
    (
        "absurd price",
        event("item_added", items=[{"sku": "S", "name": "Shoe", "price": 1e308, "quantity": 9}]),
        ("items.0.price",),
    ),
    (
        "zero quantity",
        event("item_added", items=[{"sku": "S", "name": "Shoe", "price": 5, "quantity": 0}]),
        ("items.0.quantity",),
    ),
    (
        "item without a name",
        event("item_added", items=[{"sku": "S", "price": 5}]),
        ("items.0.name", "Field required"),
    ),
    ("bad currency", event("item_added", items=[], currency="usd"), ("currency",)),
    (
        "bad email",
        event(customer={"email": "ana.example.com"}),
        ("customer.email", "'ana.example.com' is not an email address"),
    ),
    ("malformed phone", event(customer={"phone": "12"}), ("customer", "'12'", "phone number")),
    (
        "phone not valid in its country",
        event(customer={"phone": "+1 555 0100"}),
        ("customer", "phone number"),
    ),
    (
        "unknown time zone",
        event(customer={"timezone": "Mars/Olympus"}),
        ("customer.timezone", "unknown time zone 'Mars/Olympus'"),
    ),
    ("bad country", event(customer={"phone": "5550100", "country": "USA"}), ("customer.country",)),
    ("unknown consent channel", event(consent={"fax": True}), ("consent.fax", "Extra")),
    ("unknown opt-out channel", event("opt_out", channels=["fax"]), ("channels.0",)),
    (
        "occurred_at in the future",
        event(occurred_at=(utcnow() + timedelta(hours=1)).isoformat()),
        ("'occurred_at' is in the future",),
    ),
    (
        "occurred_at years ago",
        event(occurred_at=_long_ago(800)),
        ("'occurred_at' is more than a year ago",),
    ),
    (
        "occurred_at out of datetime range",
        event(occurred_at="0001-01-01T00:00:00+01:00"),
        ("'occurred_at' is out of range",),
    ),
    ("occurred_at not a date", event(occurred_at="yesterday"), ("occurred_at",)),
    ("unknown field", event(colour="red"), ("colour", "Extra")),
    ("not an object", ["activity"], ("request",)),
]

SNAPSHOT_TABLES = (Cart, CartEvent, Customer)


async def test_bad_events_are_rejected_and_write_nothing(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event(
        "c1", "item_added", items=items(40.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    before = (await retailer.get("/v1/carts/c1")).json()
    rows = await count(stack, *SNAPSHOT_TABLES)

    for name, body, fragments in EVENT_CASES:
        rejected(await retailer.post("/v1/carts/c1/events", body), 422, *fragments, case=name)
        rejected(await retailer.post("/v1/carts/new/events", body), 422, *fragments, case=name)

        assert (await retailer.get("/v1/carts/new")).status_code == 404, name
        after = (await retailer.get("/v1/carts/c1")).json()
        assert {**after, "workflow": None} == {**before, "workflow": None}, name
        assert await count(stack, *SNAPSHOT_TABLES) == rows, name


async def test_bad_cart_ids_in_the_path_are_rejected(stack: Stack) -> None:
    retailer = await stack.retailer()
    body = {"event_id": "e1", "type": "item_added", "items": items(10.0), "customer": SHOPPER}
    for cart_id in ("has space", "x" * 200, "semi;colon", "ümlaut", "<script>"):
        response = await retailer.post(f"/v1/carts/{cart_id}/events", body)
        rejected(response, 422, "cart_id", "pattern", case=cart_id)
        rejected(await retailer.get(f"/v1/carts/{cart_id}"), 422, "cart_id", case=cart_id)
    assert await count(stack, *SNAPSHOT_TABLES) == {"Cart": 0, "CartEvent": 0, "Customer": 0}
    assert (await retailer.get(f"/v1/carts/{'x' * 128}")).status_code == 404


async def test_event_id_reused_for_another_cart_is_a_conflict(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event(
        "c1", "item_added", event_id="e1", items=items(40.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    before = (await retailer.get("/v1/carts/c1")).json()

    response = await retailer.post(
        "/v1/carts/c2/events", {"event_id": "e1", "type": "item_added", "items": items(99.0)}
    )

    rejected(response, 409, "event_id 'e1' was already used for another cart", case="reuse")
    assert (await retailer.get("/v1/carts/c2")).status_code == 404
    after = (await retailer.get("/v1/carts/c1")).json()
    assert {**after, "workflow": None} == {**before, "workflow": None}
    assert await count(stack, Cart, CartEvent) == {"Cart": 1, "CartEvent": 1}


# --- templates, retailers, reports, pools, outbox -----------------------------------------

TEMPLATE_CASES: list[Case] = [
    ("syntax error", {"channel": "sms", "body": "Hi {{ name "}, ("TemplateSyntaxError", "line 1")),
    ("undefined variable", {"channel": "sms", "body": "Hi {{ nope }}"}, ("'nope' is undefined",)),
    (
        "undefined in the subject",
        {"channel": "email", "subject": "{{ oops }}", "body": "Hi"},
        ("'oops' is undefined",),
    ),
    (
        "bad html",
        {"channel": "email", "subject": "Hi", "body": "Hi", "html": "{% for %}"},
        ("TemplateSyntaxError",),
    ),
    ("email without subject", {"channel": "email", "body": "Hi"}, ("subject", "email")),
    ("division by zero", {"channel": "sms", "body": "{{ 1 / 0 }}"}, ("ZeroDivisionError",)),
    ("type error", {"channel": "sms", "body": "{{ total + 1 }}"}, ("TypeError",)),
    ("sandbox", {"channel": "sms", "body": "{{ ''.__class__ }}"}, ("SecurityError",)),
    ("unknown channel", {"channel": "fax", "body": "Hi"}, ("channel",)),
    ("empty body", {"channel": "sms", "body": ""}, ("body",)),
]


async def test_bad_templates_are_rejected(stack: Stack) -> None:
    retailer = await stack.retailer()
    for name, body, fragments in TEMPLATE_CASES:
        rejected(await retailer.put("/v1/templates/promo", body), 422, *fragments, case=name)
    rejected(
        await retailer.put("/v1/templates/Bad Name", {"channel": "sms", "body": "Hi"}),
        422,
        "name",
        case="bad name",
    )
    names = [t["name"] for t in (await retailer.get("/v1/templates")).json()]
    assert "promo" not in names
    assert await count(stack, MessageTemplate) == {"MessageTemplate": 0}


RETAILER_CASES: list[Case] = [
    ("bad id", {"id": "Acme Shoes!", "name": "Acme"}, ("id", "pattern")),
    ("one-letter id", {"id": "a", "name": "A"}, ("id",)),
    ("no name", {"id": "noname"}, ("name", "Field required")),
    (
        "unknown time zone",
        {"id": "tzshop", "name": "Tz", "timezone": "Europe/Atlantis"},
        ("timezone", "unknown time zone 'Europe/Atlantis'"),
    ),
    (
        "webhook not http",
        {"id": "hookshop", "name": "Hook", "webhook_url": "ftp://example.com/x"},
        ("webhook_url", "http"),
    ),
]


async def test_bad_retailers_are_rejected(stack: Stack) -> None:
    admin = {"X-Admin-Token": ADMIN_TOKEN}
    for name, body, fragments in RETAILER_CASES:
        response = await stack.api.post("/v1/retailers", json=body, headers=admin)
        rejected(response, 422, *fragments, case=name)
    assert await count(stack, Retailer) == {"Retailer": 0}

    existing = await stack.retailer()
    duplicate = await stack.api.post(
        "/v1/retailers", json={"id": existing.id, "name": "Again"}, headers=admin
    )
    rejected(duplicate, 409, existing.id, "already exists", case="duplicate")
    assert (await existing.get("/v1/retailer")).json()["name"] == "Acme"


async def test_bad_retailer_updates_are_rejected(stack: Stack) -> None:
    retailer = await stack.retailer()
    before = (await retailer.get("/v1/retailer")).json()
    cases: list[Case] = [
        ("webhook not a url", {"webhook_url": "not a url"}, ("webhook_url", "URL")),
        ("null name", {"name": None}, ("name", "null")),
        ("null time zone", {"timezone": None}, ("timezone", "null")),
        ("unknown time zone", {"timezone": "Nowhere"}, ("timezone", "unknown time zone")),
    ]
    for name, body, fragments in cases:
        response = await stack.api.patch("/v1/retailer", json=body, headers=retailer.headers)
        rejected(response, 422, *fragments, case=name)
    assert (await retailer.get("/v1/retailer")).json() == before


async def test_bad_report_periods_are_rejected(stack: Stack) -> None:
    retailer = await stack.retailer()
    now = utcnow()
    cases = [
        (
            "since after until",
            {"since": now.isoformat(), "until": (now - timedelta(1)).isoformat()},
        ),
        ("empty period", {"since": now.isoformat(), "until": now.isoformat()}),
        ("until before the default since", {"until": "0001-01-02T00:00:00Z"}),
        ("out of range", {"since": "0001-01-01T00:00:00+01:00"}),
    ]
    for name, params in cases:
        response = await retailer.get("/v1/reports/cart-recovery", params=params)
        rejected(response, 422, "since", case=name)
    rejected(
        await retailer.get("/v1/reports/cart-recovery", params={"since": "last week"}),
        422,
        "since",
        case="not a date",
    )


async def test_bad_pools_and_outbox_queries_are_rejected(stack: Stack) -> None:
    retailer = await stack.retailer()
    pool_cases: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("no codes", "spring", {"codes": []}, ("codes",)),
        ("empty code", "spring", {"codes": [""]}, ("codes.0",)),
        ("bad pool name", "spring sale!", {"codes": ["A"]}, ("pool",)),
    ]
    for name, pool, body, fragments in pool_cases:
        response = await retailer.post(f"/v1/discount-pools/{pool}/codes", body)
        rejected(response, 422, *fragments, case=name)
    assert await count(stack, DiscountCode) == {"DiscountCode": 0}

    for params, field in (({"channel": "fax"}, "channel"), ({"limit": 0}, "limit")):
        response = await retailer.get("/v1/outbox", params=params)
        rejected(response, 422, field, case=str(params))


async def test_nul_characters_are_refused_on_postgres_and_never_a_500(
    stack: Stack, database_kind: str
) -> None:
    """PostgreSQL cannot store a NUL in text (SQLite can): a 422 naming the field there. Cart
    events refuse it on both (SQLite's JSON functions, which store them, cut text at a NUL)."""
    retailer = await stack.retailer()
    calls: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("event_id", lambda: retailer.post("/v1/carts/c1/events", event(event_id="e\x001"))),
        ("name", lambda: retailer.post("/v1/carts/c1/events", event(customer={"name": "A\x00"}))),
        ("body", lambda: retailer.put("/v1/templates/promo", {"channel": "sms", "body": "Hi\x00"})),
        ("cart_id", lambda: retailer.get("/v1/outbox", params={"cart_id": "c\x001"})),
    ]
    events = ("event_id", "name")
    for field, call in calls:
        response = await call()
        if database_kind == "postgres" or field in events:
            rejected(response, 422, field, "NUL", case=field)
        else:
            assert response.status_code < 300, (field, response.text)
    assert await count(stack, Cart, CartEvent) == {"Cart": 0, "CartEvent": 0}
    if database_kind == "postgres":
        assert await count(stack, Cart, CartEvent, Customer, MessageTemplate) == dict.fromkeys(
            ("Cart", "CartEvent", "Customer", "MessageTemplate"), 0
        )
