"""Agent calls in the cart journey, on the time-skipping server: tasks, SLAs, retries, routing.

Agents act through the workflow's Updates here (the API sends the same ones).
"""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.conftest import RetailerClient, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.platform.db import session_scope
from winback.tasks.agent_models import Agent, Queue
from winback.tasks.models import HumanTask
from workflows.carts.cart_recovery import CartRecoveryWorkflow
from workflows.tasks.types import TaskClaim, TaskCompletion, TaskView

CALL_AT_1H = {"channel": "agent_call", "delay": "1h", "sla": "4h"}


async def _setup(stack: Stack, *steps: dict[str, Any]) -> RetailerClient:
    retailer = await stack.retailer()
    await retailer.set_cadence(cadence(*steps))
    async with session_scope(stack.sessions) as session:
        session.add(
            Agent(
                retailer_id=retailer.id,
                agent_id="sup",
                name="Sue",
                email="sue@acme.test",
                is_supervisor=True,
                token_hash=f"h-sup-{retailer.id}",
            )
        )
        session.add(
            Queue(
                retailer_id=retailer.id, name="default", supervisor_id="sup", escalate_to="seniors"
            )
        )
        session.add(Queue(retailer_id=retailer.id, name="seniors", supervisor_id="sup"))
    return retailer


async def _start(retailer: RetailerClient, cart_id: str = "c1", **customer: Any) -> None:
    await retailer.event(
        cart_id,
        "item_added",
        items=items(450.0),
        customer={**SHOPPER, **customer},
        consent=ALL_CONSENT,
    )


async def _open_task(retailer: RetailerClient, cart_id: str = "c1") -> TaskView:
    """Skips time until the cart's workflow has an open task."""
    handle = retailer.workflow(cart_id)
    async with asyncio.timeout(30):
        while True:
            open_tasks = [
                t
                for t in await handle.query(CartRecoveryWorkflow.tasks)
                if t.status in ("open", "claimed")
            ]
            if open_tasks:
                return open_tasks[0]
            await retailer.stack.env.sleep(timedelta(minutes=5))


async def _complete(
    retailer: RetailerClient, task: TaskView, outcome: str, agent: str = "ana", cart_id: str = "c1"
) -> TaskView:
    handle = retailer.workflow(cart_id)
    await handle.execute_update(CartRecoveryWorkflow.claim_task, TaskClaim(task.task_id, agent))
    return await handle.execute_update(
        CartRecoveryWorkflow.complete_task,
        TaskCompletion(task.task_id, agent, outcome, notes=f"{outcome} noted"),
    )


async def _inbox(stack: Stack) -> list[HumanTask]:
    async with stack.sessions() as session:
        rows = await session.exec(select(HumanTask).order_by(HumanTask.created_at))
        return list(rows)


async def test_a_call_task_carries_the_cart_and_a_decline_ends_the_journey(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H, {"channel": "email", "delay": "20h"})
    await _start(retailer)

    task = await _open_task(retailer)

    [row] = await _inbox(stack)
    assert (row.kind, row.queue, row.status, row.cart_id) == (
        "call_shopper",
        "default",
        "open",
        "c1",
    )
    assert row.details["cart_value"] == 450.0 and row.details["shopper_phone"] == "+14155552671"
    assert row.allowed_outcomes == [
        "reached_purchased",
        "reached_not_interested",
        "voicemail",
        "no_answer",
        "wrong_number",
    ]
    described = await retailer.workflow("c1").describe()
    from workflows import search_attributes as sa

    assert described.typed_search_attributes.get(sa.TASK_KIND) == "call_shopper"

    done = await _complete(retailer, task, "reached_not_interested")
    result = await retailer.result("c1")

    assert (done.status, done.outcome) == ("done", "reached_not_interested")
    assert result.stage == "declined"
    sent = await retailer.outbox()
    assert [(m["channel"], m["reply"]) for m in sent] == [("agent_call", "reached_not_interested")]
    [row] = await _inbox(stack)
    assert (row.status, row.claimed_by, row.outcome) == ("done", "ana", "reached_not_interested")


async def test_no_answer_twice_falls_back_to_an_sms(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await _start(retailer)

    first = await _open_task(retailer)
    await _complete(retailer, first, "no_answer")
    second = await _open_task(retailer)
    assert second.task_id != first.task_id
    await _complete(retailer, second, "voicemail")
    await retailer.result("c1")

    sent = await retailer.outbox()
    assert [(m["channel"], m["reply"]) for m in sent] == [
        ("agent_call", "no_answer"),
        ("agent_call", "voicemail"),
        ("sms", None),
    ]
    assert sent[2]["to_address"] == "+14155552671"


async def test_no_sms_fallback_without_sms_consent(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await retailer.event(
        "c1",
        "item_added",
        items=items(450.0),
        customer=SHOPPER,
        consent={"email": True, "voice": True, "sms": False},
    )

    await _complete(retailer, await _open_task(retailer), "no_answer")
    await _complete(retailer, await _open_task(retailer), "no_answer")
    result = await retailer.result("c1")

    assert [m["channel"] for m in await retailer.outbox()] == ["agent_call", "agent_call"]
    assert result.steps[-1].reason == "no sms consent"


async def test_an_overdue_task_escalates_and_keeps_waiting(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await _start(retailer)
    task = await _open_task(retailer)

    await stack.env.sleep(timedelta(hours=5))  # the 4 h SLA passes

    [row] = await _inbox(stack)
    assert (row.escalation_level, row.priority, row.queue) == (1, 2, "seniors")
    notices = [m for m in await retailer.outbox() if m["template"] == "agent_notification"]
    assert [(m["to_address"], m["subject"][:20]) for m in notices] == [
        ("sue@acme.test", "Due soon: Call the s"),
        ("sue@acme.test", "Overdue (level 1): C"),
    ]
    view = (await retailer.workflow("c1").query(CartRecoveryWorkflow.tasks))[0]
    assert (view.status, view.escalation_level, view.queue) == ("open", 1, "seniors")

    await stack.env.sleep(timedelta(hours=4))  # a second SLA period: the next level
    [row] = await _inbox(stack)
    assert row.escalation_level == 2

    await _complete(retailer, task, "reached_purchased")
    async with asyncio.timeout(10):  # the workflow writes the row once it has moved on
        while (await _inbox(stack))[0].status != "done":
            await asyncio.sleep(0.05)


async def test_a_purchase_cancels_the_open_call_task(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await _start(retailer)
    await _open_task(retailer)

    await retailer.event("c1", "order_placed", order={"order_id": "o-1", "value": 450.0})
    result = await retailer.result("c1")

    assert result.stage == "recovered"
    [row] = await _inbox(stack)
    assert row.status == "cancelled"


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ("claimed by another", "TaskClaimed"),
        ("completed by someone not holding it", "NotTaskHolder"),
        ("an outcome the task does not allow", "InvalidOutcome"),
        ("a task that is already done", "TaskClosed"),
        ("a task that does not exist", "TaskNotFound"),
    ],
)
async def test_wrong_changes_are_rejected_and_change_nothing(
    stack: Stack, change: str, error_type: str
) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await _start(retailer)
    task = await _open_task(retailer)
    handle = retailer.workflow("c1")
    await handle.execute_update(CartRecoveryWorkflow.claim_task, TaskClaim(task.task_id, "ana"))
    if change == "a task that is already done":
        await _complete(retailer, task, "voicemail")
    before = await handle.query(CartRecoveryWorkflow.tasks)

    attempts = {
        "claimed by another": (CartRecoveryWorkflow.claim_task, TaskClaim(task.task_id, "bob")),
        "completed by someone not holding it": (
            CartRecoveryWorkflow.complete_task,
            TaskCompletion(task.task_id, "bob", "voicemail"),
        ),
        "an outcome the task does not allow": (
            CartRecoveryWorkflow.complete_task,
            TaskCompletion(task.task_id, "ana", "sold"),
        ),
        "a task that is already done": (
            CartRecoveryWorkflow.complete_task,
            TaskCompletion(task.task_id, "ana", "voicemail"),
        ),
        "a task that does not exist": (
            CartRecoveryWorkflow.claim_task,
            TaskClaim("cart-x-c9/task-9", "ana"),
        ),
    }
    update, argument = attempts[change]
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, argument)  # type: ignore[arg-type]

    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == error_type
    assert await handle.query(CartRecoveryWorkflow.tasks) == before


async def test_call_me_back_from_the_nudge_opens_a_callback_task(stack: Stack) -> None:
    retailer = await _setup(
        stack, {"channel": "onsite", "sla": "15m"}, {"channel": "email", "delay": "1h"}
    )
    await _start(retailer)
    await retailer.event("c1", "exit_intent")
    async with asyncio.timeout(30):
        while not (await retailer.get("/v1/carts/c1/nudges")).json():
            await asyncio.sleep(0.05)

    told = await retailer.event("c1", "nudge_reply", reply="callback")
    assert told["workflow_actions"] == ["callback_requested"]
    task = await _open_task(retailer)

    assert task.kind == "callback" and task.priority == 2
    assert task.due_at - (await _inbox(stack))[0].created_at == timedelta(minutes=15)
    await _complete(retailer, task, "reached_purchased")
    await retailer.event("c1", "order_placed", order={"order_id": "o-2", "value": 450.0})
    assert (await retailer.result("c1")).stage == "purchased"


async def test_tasks_are_routed_to_the_queue_whose_skills_match(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    async with session_scope(stack.sessions) as session:
        session.add(
            Queue(retailer_id=retailer.id, name="shoes-es", skills=["category:shoes", "lang:es"])
        )
        session.add(
            Queue(retailer_id=retailer.id, name="electronics", skills=["category:electronics"])
        )
    shoes = [{"sku": "S1", "name": "Trail shoe", "price": 450.0, "category": "Shoes"}]
    books = [{"sku": "B1", "name": "Atlas", "price": 450.0, "category": "Books"}]
    await retailer.event(
        "c1",
        "item_added",
        items=shoes,
        consent=ALL_CONSENT,
        customer={**SHOPPER, "locale": "es-ES"},
    )
    await retailer.event(
        "c2",
        "item_added",
        items=books,
        consent=ALL_CONSENT,
        customer={**SHOPPER, "email": "bo@example.com", "phone": "+1 415 555 2672", "locale": "en"},
    )

    first = await _open_task(retailer, "c1")
    second = await _open_task(retailer, "c2")

    assert (first.queue, second.queue) == ("shoes-es", "default")
    rows = {r.cart_id: r for r in await _inbox(stack)}
    assert rows["c1"].skills == ["category:shoes", "lang:es"]


async def test_the_reminder_before_the_deadline_is_configurable(stack: Stack) -> None:
    retailer = await _setup(stack, {**CALL_AT_1H, "remind_before": "0s"})
    await _start(retailer)
    await _open_task(retailer)

    await stack.env.sleep(timedelta(hours=5))

    notices = [
        m["subject"][:8] for m in await retailer.outbox() if m["template"] == "agent_notification"
    ]
    assert notices == ["Overdue "]  # no "Due soon" reminder


async def test_not_interested_on_the_callback_ends_the_journey(stack: Stack) -> None:
    retailer = await _setup(
        stack,
        {"channel": "onsite", "sla": "15m"},
        {"channel": "email", "delay": "1h"},
        {"channel": "sms", "delay": "1d"},
    )
    await _start(retailer)
    await retailer.event("c1", "exit_intent")
    async with asyncio.timeout(30):
        while not (await retailer.get("/v1/carts/c1/nudges")).json():
            await asyncio.sleep(0.05)
    await retailer.event("c1", "nudge_reply", reply="callback")

    await _complete(retailer, await _open_task(retailer), "reached_not_interested")
    result = await retailer.result("c1")

    assert result.stage == "declined"
    assert [m["channel"] for m in await retailer.outbox()] == ["onsite", "agent_call"]


async def test_agent_calls_count_in_the_study_test_and_the_outbox(stack: Stack) -> None:
    retailer = await _setup(stack, CALL_AT_1H)
    await _start(retailer, "c1")
    await _start(retailer, "c2", email="bo@example.com", phone="+1 415 555 2672")

    await _complete(
        retailer, await _open_task(retailer, "c1"), "reached_not_interested", cart_id="c1"
    )
    await retailer.result("c1")
    await _complete(retailer, await _open_task(retailer, "c2"), "no_answer", cart_id="c2")
    await _open_task(retailer, "c2")  # the second attempt: the first call was made

    response = await retailer.get("/v1/reports/cart-recovery")
    assert response.status_code == 200, response.text
    study = response.json()["study_test"]
    assert (study["abandoned_with_contact"], study["sms_or_call_within_7d"]) == (2, 1.0)
    calls = await retailer.outbox(channel="agent_call")
    assert sorted((m["cart_id"], m["reply"]) for m in calls) == [
        ("c1", "reached_not_interested"),
        ("c2", "no_answer"),
    ]


async def _touches(retailer: RetailerClient) -> list[str]:
    """The shopper's messages (not the agents' notifications)."""
    outbox = await retailer.outbox()
    return [m["channel"] for m in outbox if m["template"] != "agent_notification"]


async def _nudged(retailer: RetailerClient) -> None:
    await _start(retailer)
    await retailer.event("c1", "exit_intent")
    async with asyncio.timeout(30):
        while not (await retailer.get("/v1/carts/c1/nudges")).json():
            await asyncio.sleep(0.05)


async def test_a_callback_asked_for_after_the_journey_ended_is_still_carried_out(
    stack: Stack,
) -> None:
    """The journey ends after its last step; a "call me back" that comes later is not lost:
    the API starts a run of the same workflow id that only carries out the callback."""
    retailer = await _setup(
        stack, {"channel": "onsite", "sla": "15m"}, {"channel": "email", "delay": "1h"}
    )
    await _nudged(retailer)
    assert (await retailer.result("c1")).stage == "completed"

    told = await retailer.event("c1", "nudge_reply", reply="callback")

    assert told["workflow_actions"] == ["callback_started"]
    task = await _open_task(retailer)
    assert (task.kind, task.priority) == ("callback", 2)
    await _complete(retailer, task, "reached_not_interested")
    result = await retailer.result("c1")
    assert result.stage == "declined"
    assert [(s.channel, s.reason) for s in result.steps] == [
        ("onsite", "callback: reached_not_interested")
    ]
    assert await _touches(retailer) == ["onsite", "email", "agent_call"]


async def test_a_callback_still_open_after_the_last_step_is_seen_through(stack: Stack) -> None:
    retailer = await _setup(
        stack, {"channel": "onsite", "sla": "15m"}, {"channel": "email", "delay": "1h"}
    )
    await _nudged(retailer)
    told = await retailer.event("c1", "nudge_reply", reply="callback")
    assert told["workflow_actions"] == ["callback_requested"]
    task = await _open_task(retailer)

    await retailer.stack.env.sleep(timedelta(hours=3))  # the email went; the task waits on
    assert await _touches(retailer) == ["onsite", "email"]
    assert [t.status for t in await retailer.workflow("c1").query(CartRecoveryWorkflow.tasks)] == [
        "open"
    ]
    await _complete(retailer, task, "voicemail")

    result = await retailer.result("c1")
    assert result.stage == "completed"
    assert ("onsite", "sent", "callback: voicemail") in [
        (s.channel, s.outcome, s.reason) for s in result.steps
    ]
