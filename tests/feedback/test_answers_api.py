"""Alert rules and survey answers through the API: rules versioned and refused when they cannot
work, every answer stored once, and each answer's effect (a case opened or joined, a promoter
thanked, nothing), one retailer never seeing or using another's."""

import copy
import uuid
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from tests.support.agents import add_agent
from tests.support.api import eventually
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]

UNITS = [
    {
        "id": "store-a",
        "name": "Store A",
        "owner": {"name": "Olga", "email": "olga@acme.test"},
        "escalation": [{"name": "Rui", "phone": "+14155552671"}],
    },
    {"id": "store-b", "name": "Store B", "owner": {"name": "Pau", "email": "pau@acme.test"}},
]
ANA = {"email": "ana@example.com", "name": "Ana García"}


def rules(**extra: Any) -> dict[str, Any]:
    """Two stores, no default store, no thank-yous: the defaults for everything else."""
    return {"business_units": copy.deepcopy(UNITS), **extra}


def answer(score: int, scale: str = "nps", **extra: Any) -> dict[str, Any]:
    return {
        "idempotency_key": uuid.uuid4().hex,
        "channel": "web",
        "scale": scale,
        "score": score,
        "business_unit": "store-a",
        **extra,
    }


async def set_rules(retailer: RetailerClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await retailer.put("/v1/alert-rules", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_answer(retailer: RetailerClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await retailer.post("/v1/feedback", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count(stack: Stack, table: Any, retailer: RetailerClient) -> int:
    async with stack.sessions() as session:
        query = select(func.count()).select_from(table).where(table.retailer_id == retailer.id)
        return int((await session.exec(query)).one())


async def counts(stack: Stack, retailer: RetailerClient) -> tuple[int, int, int]:
    return (
        await count(stack, FeedbackAnswer, retailer),
        await count(stack, FeedbackCase, retailer),
        await count(stack, Customer, retailer),
    )


async def cases(retailer: RetailerClient, **params: Any) -> list[dict[str, Any]]:
    response = await retailer.get("/v1/cases", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await set_rules(retailer, rules())
    return retailer


# --- alert rules ---------------------------------------------------------------------------


async def test_alert_rules_are_versioned(stack: Stack) -> None:
    retailer = await stack.retailer()
    assert (await retailer.get("/v1/alert-rules")).status_code == 404

    first = await set_rules(retailer, rules())
    second = await set_rules(
        retailer,
        rules(nps_at_most=4, hot_keywords=["Lawyer"], default_business_unit="store-b"),
    )

    assert (first["version"], second["version"]) == (1, 2)
    assert first["nps_at_most"] == 6 and first["slas"]["normal"]["contact"] == "1d"
    current = (await retailer.get("/v1/alert-rules")).json()
    assert current["version"] == 2
    assert (current["nps_at_most"], current["hot_keywords"]) == (4, ["lawyer"])
    assert current["default_business_unit"] == "store-b"
    versions = (await retailer.get("/v1/alert-rules/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    one = (await retailer.get("/v1/alert-rules/versions/1")).json()
    assert (one["version"], one["nps_at_most"], one["default_business_unit"]) == (1, 6, None)
    assert (await retailer.get("/v1/alert-rules/versions/3")).status_code == 404
    assert (await retailer.get("/v1/alert-rules/versions/0")).status_code == 422


def _units_with(index: int, **changes: Any) -> list[dict[str, Any]]:
    units = copy.deepcopy(UNITS)
    units[index].update(changes)
    return units


BAD_RULES: list[tuple[str, dict[str, Any], str, str]] = [
    ("NPS 10 opens every case", rules(nps_at_most=10), "request", "nps_at_most: 10 can never"),
    ("NPS -1 opens none", rules(nps_at_most=-1), "request", "nps_at_most: -1 can never match"),
    ("CSAT 5 opens every case", rules(csat_at_most=5), "request", "csat_at_most: 5 can never"),
    (
        "a store's own threshold",
        {"business_units": _units_with(1, nps_at_most=11)},
        "request",
        "business_units[1].nps_at_most: 11 can never match",
    ),
    (
        "unknown default",
        rules(default_business_unit="store-z"),
        "request",
        "default_business_unit: 'store-z' is not one of ['store-a', 'store-b']",
    ),
    (
        "duplicate store ids",
        {"business_units": _units_with(1, id="store-a")},
        "request",
        "business_units: ids must be unique",
    ),
    ("no stores", {"business_units": []}, "business_units", "at least 1"),
    (
        "an empty hot keyword",
        rules(hot_keywords=["cancel", "  "]),
        "hot_keywords",
        "an empty keyword would match every comment",
    ),
    (
        "promoters overlapping the case threshold",
        rules(nps_at_most=6, promoters={"action": "thank_you", "nps_at_least": 6}),
        "request",
        "promoters: a promoter threshold overlaps the case threshold",
    ),
    (
        "a promoter threshold beyond the scale",
        rules(promoters={"action": "thank_you", "nps_at_least": 11}),
        "promoters",
        "nps_at_least: 11 can never match",
    ),
    (
        "an owner nobody can reach",
        {"business_units": _units_with(0, owner={"name": "Olga"})},
        "business_units.0.owner",
        "Olga: give an email or a phone to reach them",
    ),
    (
        "an owner's bad email",
        {"business_units": _units_with(0, owner={"name": "Olga", "email": "olga"})},
        "business_units.0.owner.email",
        "'olga' is not an email address",
    ),
    (
        "an escalation's bad phone",
        {"business_units": _units_with(0, escalation=[{"name": "Rui", "phone": "12"}])},
        "business_units.0.escalation.0.phone",
        "not a",
    ),
    (
        "a bad root cause slug",
        rules(root_causes=["delivery_late", "Bad Cause"]),
        "root_causes",
        "'Bad Cause': lowercase letters, digits",
    ),
    (
        "duplicate resolution codes",
        rules(resolution_codes=["refund", "refund"]),
        "resolution_codes",
        "has duplicates",
    ),
    (
        "an SLA that is overdue at once",
        rules(slas={"hot": {"contact": "0s"}}),
        "slas.hot.contact",
        "must be between 1m and 90d",
    ),
    (
        "a follow-up that never comes",
        rules(follow_up={"delay": "100000d"}),
        "follow_up.delay",
        "must be between 0s and 90d",
    ),
    ("retries with no pause", rules(retry_after="5s"), "retry_after", "between 1m and 90d"),
    ("no contact attempt", rules(contact_attempts=0), "contact_attempts", "greater than or"),
    ("an unknown field", rules(nps_threshold=5), "nps_threshold", "Extra inputs"),
]


async def test_rules_that_cannot_work_are_refused_and_nothing_changes(stack: Stack) -> None:
    retailer = await stack.retailer()
    current = await set_rules(retailer, rules())

    for what, body, field, message in BAD_RULES:
        response = await retailer.put("/v1/alert-rules", body)
        assert response.status_code == 422, (what, response.text)
        errors = response.json()["errors"]
        assert any(e["field"] == field and message in e["message"] for e in errors), (
            what,
            errors,
        )
        assert message in response.json()["detail"], what

    assert (await retailer.get("/v1/alert-rules")).json() == current
    assert len((await retailer.get("/v1/alert-rules/versions")).json()) == 1


# --- answers: bad input --------------------------------------------------------------------


async def test_answers_before_any_rules_are_refused(stack: Stack) -> None:
    retailer = await stack.retailer()
    response = await retailer.post("/v1/feedback", answer(3, customer=ANA))
    assert response.status_code == 409, response.text
    assert "PUT /v1/alert-rules" in response.json()["detail"]
    assert await counts(stack, retailer) == (0, 0, 0)


async def test_bad_answers_are_refused_and_nothing_is_written(
    stack: Stack, acme: RetailerClient
) -> None:
    other = await stack.retailer("Other")
    await set_rules(other, rules())
    their_case = (await post_answer(other, answer(2)))["case_id"]

    bad: list[tuple[dict[str, Any], str, str]] = [
        (answer(11), "score", "score 11 is outside the NPS scale (0-10)"),
        (answer(-1), "score", "outside the NPS scale"),
        (answer(0, "csat"), "score", "score 0 is outside the CSAT scale (1-5)"),
        (answer(6, "csat"), "score", "outside the CSAT scale"),
        (answer(7.5), "score", "valid integer"),
        (answer(3, scale="ces"), "scale", "'nps' or 'csat'"),
        (
            answer(3, business_unit="store-z"),
            "business_unit",
            "unknown business unit 'store-z'; known: store-a, store-b",
        ),
        (answer(3, business_unit=None), "business_unit", "none (and no default)"),
        (answer(3, channel="fax"), "channel", "'web', 'email', 'sms', 'ivr' or 'app'"),
        (answer(3, customer={"email": "ana-at-example"}), "customer.email", "not an email"),
        (answer(3, customer={"phone": "12"}), "customer.phone", "phone number"),
        (answer(3, follow_up_of=999999), "follow_up_of", "no case 999999"),
        (answer(3, follow_up_of=their_case, customer=ANA), "follow_up_of", "no case"),
        (answer(3, answered_at="2999-01-01T00:00:00Z"), "answered_at", "in the future"),
        (answer(3, idempotency_key=""), "idempotency_key", "at least 1"),
        (answer(3, comment="x" * 5001), "comment", "at most 5000"),
        (answer(3, mood="grumpy"), "mood", "Extra inputs"),
    ]
    for body, field, message in bad:
        response = await acme.post("/v1/feedback", body)
        assert response.status_code == 422, (body, response.text)
        errors = response.json()["errors"]
        assert any(e["field"] == field and message in e["message"] for e in errors), (
            body,
            errors,
        )

    assert await counts(stack, acme) == (0, 0, 0)
    assert await cases(acme) == []


# --- answers: their effects ----------------------------------------------------------------


async def test_every_answer_is_stored_once(stack: Stack, acme: RetailerClient) -> None:
    body = answer(7, comment="ok I guess", customer=ANA)

    first = await acme.post("/v1/feedback", body)
    again = await acme.post("/v1/feedback", body)

    assert first.status_code == 201, first.text
    assert (first.json()["kind"], first.json()["effect"], first.json()["case_id"]) == (
        "passive",
        "none",
        None,
    )
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True and first.json()["duplicate"] is False
    assert again.json()["answer_id"] == first.json()["answer_id"]
    promoter = await post_answer(acme, answer(10, "nps", comment="great"))
    assert (promoter["kind"], promoter["effect"]) == ("promoter", "none")  # action "none"
    csat = await post_answer(acme, answer(3, "csat", business_unit="store-b"))
    assert (csat["kind"], csat["effect"]) == ("passive", "none")

    assert await counts(stack, acme) == (3, 0, 1)
    assert await cases(acme) == []


async def test_a_detractor_opens_a_case_and_more_feedback_joins_it(
    stack: Stack, acme: RetailerClient
) -> None:
    opened = await post_answer(acme, answer(3, comment="late again", customer=ANA))

    assert (opened["kind"], opened["severity"], opened["effect"]) == (
        "detractor",
        "normal",
        "opened_case",
    )
    case_id = opened["case_id"]
    assert opened["workflow_id"] == f"case-{acme.id}-{case_id}"
    assert opened["workflow_actions"] == ["case_started"]

    hot = await post_answer(
        acme,
        answer(
            8,  # not unhappy by score, but about to leave
            comment="I want to CANCEL my subscription",
            customer={"email": "bea@example.com"},
            business_unit="store-b",
        ),
    )
    assert (hot["kind"], hot["severity"], hot["effect"]) == ("detractor", "hot", "opened_case")
    assert hot["case_id"] != case_id

    joined = await post_answer(
        acme, answer(1, "csat", comment="still nothing", customer={"email": "ANA@example.com"})
    )
    assert (joined["effect"], joined["case_id"]) == ("joined_case", case_id)
    assert joined["workflow_actions"] == ["feedback_joined"]
    resent = await acme.post("/v1/feedback", {**answer(3, customer=ANA), "idempotency_key": "k1"})
    assert resent.json()["effect"] == "joined_case"
    again = await acme.post("/v1/feedback", {**answer(3, customer=ANA), "idempotency_key": "k1"})
    assert (again.status_code, again.json()["effect"]) == (200, "joined_case")
    assert again.json()["case_id"] == case_id

    assert await counts(stack, acme) == (4, 2, 2)
    listed = await cases(acme)
    assert [c["id"] for c in listed] == [hot["case_id"], case_id]  # newest first
    assert [c["id"] for c in await cases(acme, severity="hot")] == [hot["case_id"]]
    assert [c["id"] for c in await cases(acme, business_unit="store-a")] == [case_id]
    assert len(await cases(acme, status="open")) == 2
    assert await cases(acme, status="closed") == []
    assert len(await cases(acme, limit=1)) == 1
    assert (await acme.get("/v1/cases", params={"status": "gone"})).status_code == 422

    detail = (await acme.get(f"/v1/cases/{case_id}")).json()
    assert (detail["status"], detail["severity"], detail["owner"]) == ("open", "normal", "Olga")
    assert detail["customer"]["email"] == "ana@example.com"
    assert [a["id"] for a in detail["answers"]] == [
        opened["answer_id"],
        joined["answer_id"],
        resent.json()["answer_id"],
    ]

    async def joined_in_workflow() -> dict[str, Any] | None:
        state = (await acme.get(f"/v1/cases/{case_id}")).json()["workflow"]
        return state if state and len(state["joined_answers"]) == 2 else None

    state = await eventually(joined_in_workflow, what="the joined answers in the workflow")
    assert state["severity"] == "normal"
    assert (await acme.get("/v1/cases/999999")).status_code == 404


async def test_a_promoter_is_thanked_when_the_rules_say_so(
    stack: Stack, acme: RetailerClient
) -> None:
    await set_rules(
        acme,
        rules(
            promoters={"action": "thank_you", "review_url": "https://reviews.example/acme"},
        ),
    )
    thanked = await post_answer(
        acme, answer(10, customer={"email": "cy@example.com"}, consent={"email": True})
    )
    assert (thanked["kind"], thanked["effect"], thanked["case_id"]) == ("promoter", "thanked", None)
    assert thanked["workflow_actions"] == ["thanks_started"]

    async def thanks() -> list[dict[str, Any]]:
        return [m for m in await acme.outbox() if m["to_address"] == "cy@example.com"]

    (message,) = await eventually(thanks, what="the thank-you in the outbox")
    assert message["channel"] == "email"
    assert "https://reviews.example/acme" in message["body"]

    resent = await acme.post("/v1/feedback", {**answer(10), "idempotency_key": "same"})
    assert resent.json()["effect"] == "thanked"
    await set_rules(acme, rules())  # back to "none"
    plain = await post_answer(acme, answer(10, customer={"email": "dee@example.com"}))
    assert (plain["kind"], plain["effect"]) == ("promoter", "none")
    assert await cases(acme) == []


# --- tenants -------------------------------------------------------------------------------


async def test_retailers_never_see_or_use_each_others_cases_and_rules(
    stack: Stack, acme: RetailerClient
) -> None:
    case_id = (await post_answer(acme, answer(2, customer=ANA)))["case_id"]
    ana_of_acme = await add_agent(acme, "ana")
    other = await stack.retailer("Other")
    bo_of_other = await add_agent(other, "bo")

    # Acme's rules are not Other's: Other has none yet.
    assert (await other.post("/v1/feedback", answer(2))).status_code == 409
    await set_rules(
        other,
        {
            "nps_at_most": 3,
            "business_units": [
                {"id": "shop", "name": "Shop", "owner": {"name": "Q", "phone": "+14155552671"}}
            ],
        },
    )
    refused = await other.post("/v1/feedback", answer(2))  # Acme's store-a is not Other's
    assert refused.status_code == 422
    assert "known: shop" in refused.json()["detail"]
    passive = await post_answer(other, answer(5, business_unit="shop"))  # 5 > Other's 3
    assert passive["effect"] == "none"
    theirs = await post_answer(other, answer(2, business_unit="shop", customer=ANA))
    assert theirs["effect"] == "opened_case"  # the same shopper at Acme does not join across

    for caller in (other, bo_of_other):
        assert [c["id"] for c in (await caller.get("/v1/cases")).json()] == [theirs["case_id"]]
        assert (await caller.get(f"/v1/cases/{case_id}")).status_code == 404
    for caller in (acme, ana_of_acme):
        assert [c["id"] for c in (await caller.get("/v1/cases")).json()] == [case_id]
        assert (await caller.get(f"/v1/cases/{theirs['case_id']}")).status_code == 404
    assert (await stack.api.get("/v1/cases")).status_code == 401
