"""Agents and queues, and the task inbox agents work from: claim, release, reassign, complete.

The tasks here are real: an `agent_call` cadence step opens them on the time-skipping server,
and every change goes to the cart's workflow as an Update that may refuse it.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.agents import AgentClient, add_agent
from tests.support.api import eventually
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence, items
from winback.platform.clock import utcnow
from winback.tasks.models import HumanTask

pytestmark = pytest.mark.both_databases

CALL_CADENCE = cadence({"channel": "agent_call", "delay": "1h", "sla": "4h"})
OUTCOMES = ["reached_purchased", "reached_not_interested", "voicemail", "no_answer", "wrong_number"]


async def open_call_task(
    retailer: RetailerClient, agent: AgentClient, cart_id: str = "c1"
) -> dict[str, Any]:
    """A cart worth calling about, left 2 hours ago: its workflow opens a call task."""
    await retailer.event(
        cart_id, "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.stack.env.sleep(timedelta(hours=2))

    async def listed() -> list[dict[str, Any]]:
        return [t for t in await agent.tasks() if t["cart_id"] == cart_id]

    (task,) = await eventually(listed, what=f"the call task of cart {cart_id}")
    return task


async def row(stack: Stack, task_id: str) -> dict[str, Any]:
    async with stack.sessions() as session:
        task = await session.get(HumanTask, task_id)
        assert task is not None
        return task.model_dump()


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await retailer.set_cadence(CALL_CADENCE)
    return retailer


@pytest.fixture
async def ana(acme: RetailerClient) -> AgentClient:
    return await add_agent(acme, "ana", skills=["lang:en"])


@pytest.fixture
async def bo(acme: RetailerClient) -> AgentClient:
    return await add_agent(acme, "bo")


@pytest.fixture
async def sue(acme: RetailerClient) -> AgentClient:
    return await add_agent(acme, "sue", is_supervisor=True, email="sue@acme.example")


# --- agents and queues ---------------------------------------------------------------------


async def test_agents_get_a_token_once_and_are_listed_without_it(stack: Stack) -> None:
    retailer = await stack.retailer()
    created = await retailer.post(
        "/v1/agents",
        {"id": "ana", "name": "Ana", "skills": ["lang:es", "category:shoes", "lang:es"]},
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("wba_")
    assert (body["id"], body["skills"], body["queues"]) == (
        "ana",
        ["category:shoes", "lang:es"],
        ["default"],
    )
    listed = (await retailer.get("/v1/agents")).json()
    assert [a["id"] for a in listed] == ["ana"]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    me = await stack.api.get("/v1/agents/me", headers={"X-Agent-Token": body["token"]})
    assert me.status_code == 200 and me.json()["name"] == "Ana"
    async with stack.sessions() as session:
        from sqlmodel import select

        from winback.tasks.agent_models import Agent

        stored = (await session.exec(select(Agent))).one()
        assert body["token"] not in stored.model_dump_json()  # only its hash is kept

    again = await retailer.post("/v1/agents", {"id": "ana", "name": "Other Ana"})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "ana", "name": "Ana", "skills": ["spanish"]}, "skills"),
        ({"id": "Ana!", "name": "Ana"}, "id"),
        ({"id": "ana", "name": ""}, "name"),
        ({"id": "ana", "name": "Ana", "queues": ["Shoes Queue"]}, "queues.0"),
    ],
)
async def test_a_bad_agent_is_refused(stack: Stack, body: dict[str, Any], field: str) -> None:
    retailer = await stack.retailer()
    response = await retailer.post("/v1/agents", body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await retailer.get("/v1/agents")).json() == []


async def test_queues_are_created_replaced_and_checked(stack: Stack) -> None:
    retailer = await stack.retailer()
    await add_agent(retailer, "sue", is_supervisor=True)

    first = await retailer.put("/v1/queues/vip", {"skills": ["lang:en"]})
    created = await retailer.put(
        "/v1/queues/shoes-es",
        {"skills": ["category:shoes", "lang:es"], "supervisor_id": "sue", "escalate_to": "vip"},
    )
    replaced = await retailer.put(
        "/v1/queues/shoes-es", {"skills": ["lang:es"], "supervisor_id": "sue"}
    )

    assert (first.status_code, created.status_code, replaced.status_code) == (201, 201, 200)
    assert replaced.json() == {
        "name": "shoes-es",
        "skills": ["lang:es"],
        "supervisor_id": "sue",
        "escalate_to": None,
    }
    listed = (await retailer.get("/v1/queues")).json()
    assert [(q["name"], q["skills"]) for q in listed] == [
        ("shoes-es", ["lang:es"]),
        ("vip", ["lang:en"]),
    ]

    for body, field, message in [
        ({"skills": ["shoes"]}, "skills", "is not a skill"),
        ({"supervisor_id": "nobody"}, "supervisor_id", "no agent 'nobody'"),
        ({"escalate_to": "nowhere"}, "escalate_to", "no queue 'nowhere'"),
        ({"escalate_to": "vip"}, "escalate_to", "cannot escalate to itself"),
    ]:
        response = await retailer.put("/v1/queues/vip", body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field, body
        assert message in response.json()["detail"], body
    assert (await retailer.get("/v1/queues")).json() == listed  # nothing half-written
    assert (await retailer.put("/v1/queues/Bad Name", {})).status_code == 422


async def test_agent_routes_need_a_known_agent_token(stack: Stack) -> None:
    retailer = await stack.retailer()
    for path in ("/v1/tasks", "/v1/tasks/cart-x-c1/task-1", "/v1/agents/me"):
        missing = await stack.api.get(path)
        assert missing.status_code == 401, path
        assert missing.json()["detail"] == "missing X-Agent-Token header"
        unknown = await stack.api.get(path, headers={"X-Agent-Token": "wba_nope"})
        assert unknown.status_code == 401, path
        assert unknown.json()["detail"] == "unknown agent token"
        # A retailer's API key is not an agent's token.
        assert (await retailer.get(path)).status_code == 401, path
    claim = await stack.api.post("/v1/tasks/cart-x-c1/task-1/claim")
    assert claim.status_code == 401
    assert (await stack.api.post("/v1/agents", json={"id": "a", "name": "A"})).status_code == 401
    assert (await stack.api.put("/v1/queues/q", json={})).status_code == 401


# --- listing -------------------------------------------------------------------------------


async def test_the_list_shows_overdue_first_then_by_due_time_then_priority(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    now = utcnow()

    def task(name: str, due_in: timedelta, **fields: Any) -> HumanTask:
        return HumanTask(
            id=f"cart-{acme.id}-{name}/task-1",
            retailer_id=acme.id,
            workflow_id=f"cart-{acme.id}-{name}",
            kind="call_shopper",
            title=f"Call {name}",
            queue=fields.pop("queue", "default"),
            due_at=now + due_in,
            allowed_outcomes=OUTCOMES,
            **fields,
        )

    async with stack.sessions() as session:
        session.add_all(
            [
                task("later", timedelta(hours=3)),
                task("soon-low", timedelta(hours=1), priority=1),
                task("soon-high", timedelta(hours=1), priority=3, skills=["lang:es"]),
                task("late", timedelta(minutes=-5)),
                task("escalated", timedelta(hours=5), escalation_level=1, queue="vip"),
                task("mine", timedelta(hours=2), status="claimed", claimed_by="ana"),
                task("done", timedelta(minutes=-30), status="done", outcome="voicemail"),
            ]
        )
        await session.commit()

    listed = await ana.tasks()
    names = [t["workflow_id"].removeprefix(f"cart-{acme.id}-") for t in listed]
    assert names == ["late", "escalated", "soon-high", "soon-low", "mine", "later"]
    assert [t["overdue"] for t in listed] == [True, True, False, False, False, False]

    def only(tasks: list[dict[str, Any]]) -> list[str]:
        return [t["workflow_id"].removeprefix(f"cart-{acme.id}-") for t in tasks]

    assert only(await ana.tasks(mine="true")) == ["mine"]
    assert only(await ana.tasks(queue="vip")) == ["escalated"]
    assert only(await ana.tasks(skill="lang:es")) == ["soon-high"]
    assert only(await ana.tasks(status="done")) == ["done"]
    assert len(await ana.tasks(status=["open", "claimed", "done"])) == 7
    bad = await ana.get("/v1/tasks", params={"skill": "spanish"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "skill"
    assert (await ana.get("/v1/tasks", params={"status": "lost"})).status_code == 422


# --- a real task ---------------------------------------------------------------------------


async def test_an_agent_call_from_claim_to_completion(
    stack: Stack, acme: RetailerClient, ana: AgentClient, bo: AgentClient
) -> None:
    task = await open_call_task(acme, ana)
    task_id = task["id"]

    assert task_id == f"cart-{acme.id}-c1/task-1"
    assert (task["kind"], task["status"], task["claimed_by"]) == ("call_shopper", "open", None)
    assert task["allowed_outcomes"] == OUTCOMES
    assert task["details"]["cart_value"] == 450.0
    assert task["details"]["shopper_phone"] == "+14155552671"
    assert task["overdue"] is False
    assert await ana.task(task_id) == task

    claimed = await ana.post(f"/v1/tasks/{task_id}/claim")
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "ana")
    assert (await ana.post(f"/v1/tasks/{task_id}/claim")).status_code == 200  # already mine
    before = await row(stack, task_id)

    stolen = await bo.post(f"/v1/tasks/{task_id}/claim")
    assert stolen.status_code == 409
    assert stolen.json() == {
        "detail": f"task {task_id} is held by ana",
        "errors": [],  # the one error schema: detail, errors, and a refusal's reason
        "reason": "TaskClaimed",
    }
    not_mine = await bo.post(f"/v1/tasks/{task_id}/complete", {"outcome": "no_answer"})
    assert not_mine.status_code == 403
    assert not_mine.json()["reason"] == "NotTaskHolder"
    wrong = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "sold"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == f"outcome 'sold' is not one of: {', '.join(OUTCOMES)}"
    assert await row(stack, task_id) == before  # refused changes leave the inbox as it was
    assert (await ana.post(f"/v1/tasks/{task_id}/complete", {})).status_code == 422

    done = await ana.post(
        f"/v1/tasks/{task_id}/complete",
        {"outcome": "reached_not_interested", "notes": "Bought it in the store."},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    assert done.json()["outcome"] == "reached_not_interested"
    assert done.json()["notes"] == "Bought it in the store."
    assert done.json()["completed_at"] is not None
    # The workflow wrote the row and recorded the call before it answered (CartRecoveryV4):
    # the inbox and the outbox say so at once, as the answer does.
    written = await row(stack, task_id)
    assert (written["status"], written["outcome"], written["notes"]) == (
        "done",
        "reached_not_interested",
        "Bought it in the store.",
    )
    assert written["completed_at"] == datetime.fromisoformat(done.json()["completed_at"])
    assert [(m["channel"], m["reply"]) for m in await acme.outbox(channel="agent_call")] == [
        ("agent_call", "reached_not_interested")
    ]
    assert (await acme.result("c1")).stage == "declined"

    again = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "no_answer"})
    assert again.status_code == 409
    assert again.json()["detail"] == "task is no longer open"
    assert await ana.tasks() == []
    (closed,) = await ana.tasks(status="done")
    assert (closed["id"], closed["claimed_by"], closed["outcome"]) == (
        task_id,
        "ana",
        "reached_not_interested",
    )


async def test_a_task_past_its_sla_is_overdue_and_escalated(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    task = await open_call_task(acme, ana)
    await stack.env.sleep(timedelta(hours=4))  # the 4 h SLA passes

    async def escalated() -> dict[str, Any] | None:
        seen = await ana.task(task["id"])
        return seen if seen["escalation_level"] == 1 else None

    late = await eventually(escalated, what="the task's escalation")
    assert late["overdue"] is True
    assert late["priority"] == task["priority"] + 1
    assert late["status"] == "open"  # it keeps waiting for an agent
    assert (await ana.tasks())[0]["id"] == task["id"]


async def test_release_and_reassign(
    stack: Stack, acme: RetailerClient, ana: AgentClient, bo: AgentClient, sue: AgentClient
) -> None:
    task_id = (await open_call_task(acme, ana))["id"]
    assert (await ana.post(f"/v1/tasks/{task_id}/claim")).status_code == 200

    not_holder = await bo.post(f"/v1/tasks/{task_id}/release")
    assert not_holder.status_code == 403
    released = await ana.post(f"/v1/tasks/{task_id}/release")
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["claimed_by"]) == ("open", None)
    assert (await ana.post(f"/v1/tasks/{task_id}/release")).status_code == 403  # nobody holds it

    by_agent = await ana.post(f"/v1/tasks/{task_id}/reassign", {"to_agent_id": "bo"})
    assert by_agent.status_code == 403
    assert by_agent.json()["detail"] == "only a supervisor can reassign tasks"
    to_nobody = await sue.post(f"/v1/tasks/{task_id}/reassign", {"to_agent_id": "zed"})
    assert to_nobody.status_code == 422
    assert to_nobody.json()["detail"] == "to_agent_id: no agent 'zed'"
    assert (await ana.task(task_id))["claimed_by"] is None

    moved = await sue.post(f"/v1/tasks/{task_id}/reassign", {"to_agent_id": "bo"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.json()["claimed_by"]) == ("claimed", "bo")
    assert [t["id"] for t in await bo.tasks(mine="true")] == [task_id]
    assert await ana.tasks(mine="true") == []

    # The queue's own supervisor may reassign too, without being a supervisor everywhere.
    await acme.put("/v1/queues/default", {"supervisor_id": "ana"})
    back = await ana.post(f"/v1/tasks/{task_id}/reassign", {"to_agent_id": "ana"})
    assert back.status_code == 200 and back.json()["claimed_by"] == "ana"
    finished = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "reached_purchased"})
    assert finished.status_code == 200, finished.text


async def test_two_agents_claiming_at_once_one_wins(
    stack: Stack, acme: RetailerClient, ana: AgentClient, bo: AgentClient
) -> None:
    task_id = (await open_call_task(acme, ana))["id"]

    first, second = await asyncio.gather(
        ana.post(f"/v1/tasks/{task_id}/claim"), bo.post(f"/v1/tasks/{task_id}/claim")
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner = "ana" if first.status_code == 200 else "bo"
    assert (await ana.task(task_id))["claimed_by"] == winner
    assert (await row(stack, task_id))["version"] == 1


async def test_unknown_tasks_are_404(ana: AgentClient) -> None:
    for path in ("/v1/tasks/nope", "/v1/tasks/cart-x-c1/task-9"):
        response = await ana.get(path)
        assert response.status_code == 404
        assert response.json()["detail"] == f"no task {path.removeprefix('/v1/tasks/')!r}"
    claim = await ana.post("/v1/tasks/cart-x-c1/task-9/claim")
    assert claim.status_code == 404


# --- tenant isolation ----------------------------------------------------------------------


async def test_an_agent_sees_only_its_own_retailers_tasks(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    task_id = (await open_call_task(acme, ana))["id"]
    other = await stack.retailer("Other")
    await other.put("/v1/queues/default", {})
    mallory = await add_agent(other, "ana", is_supervisor=True)  # same agent id, other retailer

    assert await mallory.tasks() == []
    assert await mallory.tasks(status=["open", "claimed", "done", "cancelled"]) == []
    for action, body in [
        ("claim", None),
        ("release", None),
        ("reassign", {"to_agent_id": "ana"}),
        ("complete", {"outcome": "reached_purchased"}),
    ]:
        response = await mallory.post(f"/v1/tasks/{task_id}/{action}", body)
        assert response.status_code == 404, action
    assert (await mallory.get(f"/v1/tasks/{task_id}")).status_code == 404
    assert (await ana.task(task_id))["status"] == "open"
    assert [a["id"] for a in (await acme.get("/v1/agents")).json()] == ["ana"]
    assert [q["name"] for q in (await acme.get("/v1/queues")).json()] == []
