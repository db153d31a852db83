"""A whole feedback case driven through the API, as the owner and the agents live it: an unhappy
answer, the owner's alert, the contact, the root cause, the resolution, the closed case with
what was won back, and the follow-up survey's answer linked back to it."""

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.agents import AgentClient, add_agent
from tests.support.api import eventually

pytestmark = pytest.mark.both_databases

ANA = {"email": "ana@example.com", "phone": "+1 415 555 2671", "name": "Ana García"}
RULES = {
    "business_units": [
        {
            "id": "store-a",
            "name": "Store A",
            "owner": {"name": "Olga", "email": "olga@acme.test"},
            "escalation": [{"name": "Rui", "email": "rui@acme.test"}],
        }
    ],
    "root_causes": ["delivery_late", "wrong_item", "other"],
    "resolution_codes": ["refund", "discount", "apology"],
    "follow_up": {"enabled": True, "delay": "1d", "wait": "3d"},
}


async def next_task(
    stack: Stack, agent: AgentClient, case_id: int, kind: str, *, skip_time: bool = False
) -> dict[str, Any]:
    """Polls the agent's inbox (the store's queue) until the case's task of this kind opens."""

    async def listed() -> list[dict[str, Any]]:
        if skip_time:
            await stack.env.sleep(timedelta(minutes=1))
        return [
            t
            for t in await agent.tasks(queue="store-a")
            if t["case_id"] == str(case_id) and t["kind"] == kind
        ]

    (task,) = await eventually(listed, what=f"the {kind} task of case {case_id}")
    return task


async def work(agent: AgentClient, task: dict[str, Any], **completion: Any) -> dict[str, Any]:
    claimed = await agent.post(f"/v1/tasks/{task['id']}/claim")
    assert claimed.status_code == 200, claimed.text
    done = await agent.post(f"/v1/tasks/{task['id']}/complete", completion)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    return dict(done.json())


async def read_case(caller: RetailerClient | AgentClient, case_id: int) -> dict[str, Any]:
    response = await caller.get(f"/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def lookup(agent: AgentClient, email: str) -> dict[str, Any]:
    response = await agent.get("/v1/customers/lookup", params={"email": email})
    assert response.status_code == 200, response.text
    (customer,) = response.json()["customers"]
    return dict(customer)


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    response = await retailer.put("/v1/alert-rules", RULES)
    assert response.status_code == 201, response.text
    assert (await retailer.put("/v1/queues/store-a", {})).status_code == 201
    return retailer


async def test_a_detractor_is_contacted_understood_won_back_and_asked_again(
    stack: Stack, acme: RetailerClient
) -> None:
    ana = await add_agent(acme, "ana", queues=["store-a"])
    posted = await acme.post(
        "/v1/feedback",
        {
            "idempotency_key": "survey-1",
            "channel": "email",
            "scale": "nps",
            "score": 3,
            "comment": "My order came two weeks late",
            "customer": ANA,
            "consent": {"email": True},
            "order_id": "o-17",
            "business_unit": "store-a",
            "touchpoint": "delivery",
        },
    )
    assert posted.status_code == 201, posted.text
    opened = posted.json()
    case_id = opened["case_id"]
    assert (opened["effect"], opened["workflow_id"]) == ("opened_case", f"case-{acme.id}-{case_id}")

    # The owner hears of it at once, by email (a normal case: no SMS).
    async def alerts() -> list[dict[str, Any]]:
        return [m for m in await acme.outbox() if m["to_address"] == "olga@acme.test"]

    (alert,) = await eventually(alerts, what="the owner's alert")
    assert alert["channel"] == "email"
    assert f"case #{case_id}" in alert["subject"] and "two weeks late" in alert["body"]

    # Contact: the agent finds the task in the store's queue, and Ana when she calls.
    contact = await next_task(stack, ana, case_id, "contact_customer")
    assert contact["allowed_outcomes"] == ["reached", "not_reached", "refused"]
    seen = await lookup(ana, "ANA@example.com")
    (open_case,) = seen["open_cases"]
    assert (open_case["id"], open_case["severity"], open_case["business_unit"]) == (
        case_id,
        "normal",
        "store-a",
    )
    assert open_case["owner"] == "Olga"
    assert (await read_case(ana, case_id))["workflow"]["stage"] == "contacting"
    (recent,) = seen["recent_answers"]
    assert (recent["channel"], recent["scale"], recent["score"], recent["case_id"]) == (
        "email",
        "nps",
        3,
        case_id,
    )
    assert recent["comment"] == "My order came two weeks late"
    assert [t["id"] for t in seen["open_tasks"]] == [contact["id"]]
    await work(ana, contact, outcome="reached", notes="Called her; she was calm")

    # Root cause: only a category of the retailer's taxonomy is taken.
    cause = await next_task(stack, ana, case_id, "root_cause")
    assert (await ana.post(f"/v1/tasks/{cause['id']}/claim")).status_code == 200
    for data, message in [
        ({"category": "teleportation"}, "data.category must be one of"),
        ({"facts": ["late"]}, "data.category must be one of"),
        ({"category": "delivery_late", "facts": "late"}, "data.facts must be a list of strings"),
    ]:
        refused = await ana.post(
            f"/v1/tasks/{cause['id']}/complete", {"outcome": "identified", "data": data}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["reason"] == "InvalidTaskData"
        assert message in refused.json()["detail"]
    still = await ana.task(cause["id"])
    assert (still["status"], still["claimed_by"]) == ("claimed", "ana")
    cause_done = await ana.post(
        f"/v1/tasks/{cause['id']}/complete",
        {
            "outcome": "identified",
            "notes": "The carrier lost the parcel for a week",
            "data": {"category": "delivery_late", "facts": ["carrier scan gap", "no SMS sent"]},
        },
    )
    assert cause_done.status_code == 200, cause_done.text

    # Resolution: a code of the retailer's and whether she was won back.
    resolution = await next_task(stack, ana, case_id, "resolution")
    assert (await ana.post(f"/v1/tasks/{resolution['id']}/claim")).status_code == 200
    unsure = await ana.post(
        f"/v1/tasks/{resolution['id']}/complete",
        {"outcome": "resolved", "data": {"resolution_code": "discount"}},
    )
    assert unsure.status_code == 422 and "data.won_back" in unsure.json()["detail"]
    await work(
        ana,
        resolution,
        outcome="resolved",
        notes="20% off her next order, and an apology",
        data={"resolution_code": "discount", "won_back": True},
    )

    async def closed() -> dict[str, Any] | None:
        case = await read_case(ana, case_id)
        return case if case["status"] == "closed" else None

    case = await eventually(closed, what=f"case {case_id} closed")
    assert (case["contact_attempts"], case["contact_outcome"]) == (1, "reached")
    assert case["first_contact_at"] is not None and case["closed_at"] is not None
    assert (case["root_cause"], case["facts"]) == (
        "delivery_late",
        ["carrier scan gap", "no SMS sent"],
    )
    assert case["root_cause_notes"] == "The carrier lost the parcel for a week"
    assert (case["resolution_code"], case["won_back"], case["close_reason"]) == (
        "discount",
        True,
        "resolved",
    )
    assert case["action_taken"] == "20% off her next order, and an apology"
    assert [(t["kind"], t["status"], t["outcome"]) for t in case["tasks"]] == [
        ("contact_customer", "done", "reached"),
        ("root_cause", "done", "identified"),
        ("resolution", "done", "resolved"),
    ]
    assert case["escalations"] == []
    assert [a["id"] for a in case["answers"]] == [opened["answer_id"]]
    assert case["customer"]["email"] == "ana@example.com"
    assert case["workflow"]["won_back"] is True
    assert case["workflow"]["stage"] == "follow_up"
    assert (await lookup(ana, "ana@example.com"))["open_cases"] == []
    assert [c["id"] for c in (await acme.get("/v1/cases", params={"status": "closed"})).json()] == [
        case_id
    ]

    # A day later she is asked again; her answer is linked back to the case.
    await stack.env.sleep(timedelta(days=1, minutes=1))

    async def survey() -> list[dict[str, Any]]:
        return [m for m in await acme.outbox() if m["to_address"] == "ana@example.com"]

    (asked,) = await eventually(survey, what="the follow-up survey")
    assert f"case #{case_id}" in asked["body"]
    follow_up = await acme.post(
        "/v1/feedback",
        {
            "idempotency_key": "survey-1-follow-up",
            "channel": "email",
            "scale": "nps",
            "score": 9,
            "customer": {"email": "ana@example.com"},
            "business_unit": "store-a",
            "follow_up_of": case_id,
        },
    )
    assert follow_up.status_code == 201, follow_up.text
    assert (follow_up.json()["effect"], follow_up.json()["case_id"]) == (
        "follow_up_linked",
        case_id,
    )

    async def scored() -> dict[str, Any] | None:
        case = await read_case(acme, case_id)
        return case if case["follow_up_score"] == 9 else None

    case = await eventually(scored, what="the follow-up score on the case")
    assert [a["id"] for a in case["answers"]] == [
        opened["answer_id"],
        follow_up.json()["answer_id"],
    ]
    assert case["answers"][1]["follow_up_of"] == case_id


async def test_the_listing_shows_the_stage_a_case_waits_in(
    stack: Stack, acme: RetailerClient
) -> None:
    ana = await add_agent(acme, "ana", queues=["store-a"])
    posted = await acme.post(
        "/v1/feedback",
        {
            "idempotency_key": "survey-2",
            "channel": "web",
            "scale": "csat",
            "score": 1,
            "customer": ANA,
            "business_unit": "store-a",
        },
    )
    case_id = posted.json()["case_id"]
    await next_task(stack, ana, case_id, "contact_customer")

    (listed,) = (await ana.get("/v1/cases")).json()
    assert listed["stage"] == "contacting"
    (open_case,) = (await lookup(ana, "ana@example.com"))["open_cases"]
    assert open_case["stage"] == "contacting"
