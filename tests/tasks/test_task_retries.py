"""Agents' retries are safe: a repeated completion answers with what was applied, and a claim
of a task listed a moment before its workflow knows it waits for it instead of a 404."""

import asyncio
from datetime import timedelta

import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.agents import AgentClient, add_agent
from tests.tasks.test_agents_and_tasks_api import CALL_CADENCE, open_call_task
from winback.tasks.models import HumanTask

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await retailer.set_cadence(CALL_CADENCE)
    return retailer


@pytest.fixture
async def ana(acme: RetailerClient) -> AgentClient:
    return await add_agent(acme, "ana", skills=["lang:en"])


async def test_completing_twice_the_same_way_answers_with_the_applied_result(
    acme: RetailerClient, ana: AgentClient
) -> None:
    task_id = (await open_call_task(acme, ana))["id"]
    assert (await ana.post(f"/v1/tasks/{task_id}/claim")).status_code == 200

    first = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "voicemail"})
    again = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "voicemail"})
    other = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "no_answer"})

    assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
    # completed_at: the workflow's own write of the row (its clock) may land in between
    assert {**again.json(), "completed_at": None} == {**first.json(), "completed_at": None}
    assert (again.json()["status"], again.json()["outcome"]) == ("done", "voicemail")
    assert other.status_code == 409 and other.json()["reason"] == "TaskClosed"


async def test_completing_again_after_the_workflow_finished_answers_with_the_result(
    acme: RetailerClient, ana: AgentClient
) -> None:
    task_id = (await open_call_task(acme, ana))["id"]
    assert (await ana.post(f"/v1/tasks/{task_id}/claim")).status_code == 200
    outcome = {"outcome": "reached_not_interested"}
    first = await ana.post(f"/v1/tasks/{task_id}/complete", outcome)
    assert first.status_code == 200, first.text
    assert (await acme.result("c1")).stage == "declined"

    again = await ana.post(f"/v1/tasks/{task_id}/complete", outcome)

    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["outcome"]) == ("done", "reached_not_interested")
    refused = await ana.post(f"/v1/tasks/{task_id}/complete", {"outcome": "voicemail"})
    assert refused.status_code == 409


async def test_a_claim_of_a_task_its_workflow_does_not_know_yet_waits_for_it(
    stack: Stack, acme: RetailerClient, ana: AgentClient
) -> None:
    """The second call task's row is listed before the workflow has opened the task."""
    first = await open_call_task(acme, ana)
    second_id = first["id"].replace("/task-1", "/task-2")
    async with stack.sessions() as session:
        row = await session.get(HumanTask, first["id"])
        assert row is not None
        data = row.model_dump(exclude={"id", "status", "claimed_by", "version"})
        session.add(HumanTask(id=second_id, **data))
        await session.commit()

    claim = asyncio.ensure_future(ana.post(f"/v1/tasks/{second_id}/claim"))
    await asyncio.sleep(0.2)  # the claim is waiting for the workflow now
    assert not claim.done()
    assert (await ana.post(f"/v1/tasks/{first['id']}/claim")).status_code == 200
    no_answer = await ana.post(f"/v1/tasks/{first['id']}/complete", {"outcome": "no_answer"})
    assert no_answer.status_code == 200, no_answer.text
    await stack.env.sleep(timedelta(days=1, hours=1))  # the call is retried the next day

    claimed = await claim
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "ana")
