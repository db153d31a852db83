"""The closed loop on the time-skipping server: from an unhappy answer to a closed case."""

import asyncio
from datetime import timedelta
from typing import Any

from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.tasks.models import Escalation
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.types import CaseState
from workflows.tasks.types import TaskClaim, TaskCompletion, TaskView

CUSTOMER = {"email": "ana@example.com", "phone": "+1 415 555 2671", "name": "Ana"}
RULES: dict[str, Any] = {
    "business_units": [
        {
            "id": "store-madrid",
            "name": "Madrid store",
            "owner": {"name": "Olga", "email": "olga@acme.test", "phone": "+34 612 000 001"},
            "escalation": [
                {"name": "Marta (area)", "email": "marta@acme.test"},
                {"name": "Pablo (country)", "email": "pablo@acme.test"},
            ],
        }
    ],
    "default_business_unit": "store-madrid",
    "contact_attempts": 3,
    "retry_after": "4h",
    "follow_up": {"enabled": True, "delay": "7d", "wait": "14d"},
    "promoters": {"action": "thank_you", "review_url": "https://reviews.example/acme"},
}


async def _retailer(stack: Stack, **overrides: Any) -> RetailerClient:
    retailer = await stack.retailer()
    response = await retailer.put("/v1/alert-rules", {**RULES, **overrides})
    assert response.status_code == 201, response.text
    return retailer


async def _answer(
    retailer: RetailerClient, score: int, comment: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {
        "idempotency_key": f"a-{score}-{comment}-{extra.get('follow_up_of')}",
        "channel": "web",
        "scale": "nps",
        "score": score,
        "comment": comment,
        "customer": CUSTOMER,
        "consent": {"email": True},
        **extra,
    }
    response = await retailer.post("/v1/feedback", body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _case(retailer: RetailerClient, workflow_id: str) -> Any:
    return retailer.stack.client.get_workflow_handle_for(FeedbackCaseWorkflow.run, workflow_id)


async def _open_task(retailer: RetailerClient, workflow_id: str, kind: str) -> TaskView:
    handle = _case(retailer, workflow_id)
    async with asyncio.timeout(30):
        while True:
            for task in await handle.query(FeedbackCaseWorkflow.tasks):
                if task.kind == kind and task.status in ("open", "claimed"):
                    return task
            await retailer.stack.env.sleep(timedelta(minutes=20))  # through a retry's wait


async def _do(
    retailer: RetailerClient,
    workflow_id: str,
    kind: str,
    outcome: str,
    notes: str = "",
    **data: Any,
) -> TaskView:
    task = await _open_task(retailer, workflow_id, kind)
    handle = _case(retailer, workflow_id)
    await handle.execute_update(FeedbackCaseWorkflow.claim_task, TaskClaim(task.task_id, "ana"))
    return await handle.execute_update(
        FeedbackCaseWorkflow.complete_task,
        TaskCompletion(task.task_id, "ana", outcome, notes=notes, data=data),
    )


async def _result(retailer: RetailerClient, workflow_id: str) -> Any:
    handle = _case(retailer, workflow_id)
    async with retailer.stack.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        return await handle.result()


async def _row(stack: Stack, case_id: int) -> FeedbackCase:
    async with stack.sessions() as session:
        case = await session.get(FeedbackCase, case_id)
        assert case is not None
        return case


async def test_a_detractor_goes_through_every_step_and_the_follow_up_links_back(
    stack: Stack,
) -> None:
    retailer = await _retailer(stack)
    opened = await _answer(retailer, 3, "Delivery was two weeks late")
    assert (opened["effect"], opened["severity"]) == ("opened_case", "normal")
    wf = opened["workflow_id"]

    await _do(retailer, wf, "contact_customer", "reached", notes="Called, she was upset")
    await _do(
        retailer,
        wf,
        "root_cause",
        "identified",
        notes="Courier lost the parcel",
        category="delivery_late",
        facts=["courier scan missing", "warehouse OK"],
    )
    await _do(
        retailer,
        wf,
        "resolution",
        "resolved",
        notes="Refunded shipping, sent a voucher",
        resolution_code="refund",
        won_back=True,
    )
    async with asyncio.timeout(30):  # the survey goes out after 7 days
        while not [m for m in await retailer.outbox() if m["template"] == "follow_up_survey"]:
            await stack.env.sleep(timedelta(days=1))
    follow_up = await _answer(retailer, 9, follow_up_of=opened["case_id"])
    result = await _result(retailer, wf)

    assert follow_up["effect"] == "follow_up_linked"
    assert (result.close_reason, result.won_back, result.follow_up_score) == ("resolved", True, 9)
    case = await _row(stack, opened["case_id"])
    assert (case.status, case.stage, case.contact_outcome, case.root_cause) == (
        "closed",
        "closed",
        "reached",
        "delivery_late",
    )
    assert case.facts == ["courier scan missing", "warehouse OK"]
    assert (case.resolution_code, case.won_back, case.follow_up_score) == ("refund", True, 9)
    assert case.first_contact_at is not None and case.closed_at is not None
    alerts = [m for m in await retailer.outbox() if m["to_address"] == "olga@acme.test"]
    assert len(alerts) == 1 and "NORMAL" in alerts[0]["subject"]


async def test_not_reached_twice_then_reached(stack: Stack) -> None:
    retailer = await _retailer(stack)
    wf = (await _answer(retailer, 2))["workflow_id"]

    first = await _do(retailer, wf, "contact_customer", "not_reached")
    second = await _do(retailer, wf, "contact_customer", "not_reached")
    third = await _do(retailer, wf, "contact_customer", "reached")
    await _open_task(retailer, wf, "root_cause")

    assert len({first.task_id, second.task_id, third.task_id}) == 3
    state: CaseState = await _case(retailer, wf).query(FeedbackCaseWorkflow.state)
    assert (state.stage, state.contact_attempts) == ("root_cause", 3)


async def test_never_reached_or_refused_closes_as_not_contacted(stack: Stack) -> None:
    retailer = await _retailer(stack, contact_attempts=2)
    never = (await _answer(retailer, 1))["workflow_id"]
    await _do(retailer, never, "contact_customer", "not_reached")
    await _do(retailer, never, "contact_customer", "not_reached")
    assert (await _result(retailer, never)).close_reason == "not_reached"

    refused = await _answer(retailer, 0, "never again", customer={"email": "bo@x.test"})
    await _do(retailer, refused["workflow_id"], "contact_customer", "refused")
    assert (await _result(retailer, refused["workflow_id"])).close_reason == "refused"


async def test_a_missed_sla_escalates_along_the_chain_twice(stack: Stack) -> None:
    retailer = await _retailer(stack)
    opened = await _answer(retailer, 4, "I will call my lawyer")  # hot: contact SLA 2 h
    assert opened["severity"] == "hot"
    await _open_task(retailer, opened["workflow_id"], "contact_customer")

    await stack.env.sleep(timedelta(hours=5))  # two SLA periods pass

    async with stack.sessions() as session:
        escalations = (await session.exec(select(Escalation).order_by(Escalation.level))).all()
    assert [(e.level, e.notified, e.case_id) for e in escalations] == [
        (1, "marta@acme.test", opened["case_id"]),
        (2, "pablo@acme.test", opened["case_id"]),
    ]
    sent = {m["to_address"] for m in await retailer.outbox()}
    assert {"marta@acme.test", "pablo@acme.test", "+34612000001"} <= sent  # hot: owner texted
    await _do(retailer, opened["workflow_id"], "contact_customer", "reached")


async def test_a_promoter_opens_no_case_and_is_thanked(stack: Stack) -> None:
    retailer = await _retailer(stack)

    answered = await _answer(retailer, 10, "Great service")

    assert (answered["effect"], answered["case_id"]) == ("thanked", None)
    async with asyncio.timeout(30):
        while not (
            thanks := [m for m in await retailer.outbox() if m["template"] == "promoter_thanks"]
        ):
            await asyncio.sleep(0.05)
    assert "https://reviews.example/acme" in thanks[0]["body"]
    async with stack.sessions() as session:
        assert (await session.exec(select(FeedbackCase))).all() == []
        assert len((await session.exec(select(FeedbackAnswer))).all()) == 1


async def test_new_feedback_from_the_customer_joins_the_open_case(stack: Stack) -> None:
    retailer = await _retailer(stack)
    opened = await _answer(retailer, 5, "Slow checkout")
    await _open_task(retailer, opened["workflow_id"], "contact_customer")

    joined = await _answer(retailer, 2, "Now I want to cancel my order")

    assert (joined["effect"], joined["case_id"]) == ("joined_case", opened["case_id"])
    handle = _case(retailer, opened["workflow_id"])
    async with asyncio.timeout(10):
        while (state := await handle.query(FeedbackCaseWorkflow.state)).joined_answers == []:
            await asyncio.sleep(0.05)
    assert state.joined_answers == [joined["answer_id"]] and state.severity == "hot"
    async with stack.sessions() as session:
        assert len((await session.exec(select(FeedbackCase))).all()) == 1
