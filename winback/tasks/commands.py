"""Agents' changes to a human task: sent to the workflow that waits for it, then mirrored.

The workflow is the source of truth. Each change is an Update whose validator rejects a wrong
one (a task held by someone else, an outcome it does not allow, a task already done) before it
touches history; a rejection raises ``WorkflowUpdateFailedError`` and leaves the inbox row as it
was. Only an accepted change is written to the row, and only if it is newer than what the row
shows: the workflow's own activities write the same row, and the two can arrive in any order.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from winback.platform.clock import utcnow
from winback.tasks.models import HumanTask, TaskPublic
from workflows.tasks.human_tasks import HumanTaskWorkflow
from workflows.tasks.types import TaskClaim, TaskCompletion, TaskReassign, TaskRelease, TaskView
from workflows.vocabulary import TaskStatus

# How long one call to Temporal may take; past it the caller gets a 503 and can retry (every
# change is safe to repeat: a second claim by the holder is a no-op, a second completion a 409).
UPDATE_RPC_TIMEOUT = timedelta(seconds=30)


class TaskNoLongerOpen(Exception):
    """The workflow that owned the task has finished, so nothing can change the task now."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is no longer open")
        self.task_id = task_id


def is_overdue(task: HumanTask, now: datetime) -> bool:
    """Open or claimed, and past its due time or already escalated for missing it (an
    escalation gives the task a new due time, but it stays late)."""
    return task.status in TaskStatus.ACTIVE and (task.due_at <= now or task.escalation_level > 0)


def task_public(task: HumanTask, now: datetime) -> TaskPublic:
    return TaskPublic.model_validate(task, update={"overdue": is_overdue(task, now)})


async def find_task(session: AsyncSession, *, retailer_id: str, task_id: str) -> HumanTask | None:
    query = select(HumanTask).where(HumanTask.retailer_id == retailer_id, HumanTask.id == task_id)
    return (await session.exec(query)).first()


async def claim(
    session: AsyncSession, client: Client, *, task: HumanTask, agent_id: str
) -> HumanTask:
    arg = TaskClaim(task_id=task.id, agent_id=agent_id)
    return await _apply(
        session,
        client,
        task,
        lambda h: h.execute_update(
            HumanTaskWorkflow.claim_task, arg, rpc_timeout=UPDATE_RPC_TIMEOUT
        ),
    )


async def release(
    session: AsyncSession, client: Client, *, task: HumanTask, agent_id: str
) -> HumanTask:
    arg = TaskRelease(task_id=task.id, agent_id=agent_id)
    return await _apply(
        session,
        client,
        task,
        lambda h: h.execute_update(
            HumanTaskWorkflow.release_task, arg, rpc_timeout=UPDATE_RPC_TIMEOUT
        ),
    )


async def reassign(
    session: AsyncSession, client: Client, *, task: HumanTask, to_agent_id: str, by_agent_id: str
) -> HumanTask:
    arg = TaskReassign(task_id=task.id, to_agent_id=to_agent_id, by_agent_id=by_agent_id)
    return await _apply(
        session,
        client,
        task,
        lambda h: h.execute_update(
            HumanTaskWorkflow.reassign_task, arg, rpc_timeout=UPDATE_RPC_TIMEOUT
        ),
    )


async def complete(
    session: AsyncSession,
    client: Client,
    *,
    task: HumanTask,
    agent_id: str,
    outcome: str,
    notes: str,
    data: dict[str, Any],
) -> HumanTask:
    arg = TaskCompletion(
        task_id=task.id, agent_id=agent_id, outcome=outcome, notes=notes, data=data
    )
    return await _apply(
        session,
        client,
        task,
        lambda h: h.execute_update(
            HumanTaskWorkflow.complete_task, arg, rpc_timeout=UPDATE_RPC_TIMEOUT
        ),
        notes=notes,
    )


async def _apply(
    session: AsyncSession,
    client: Client,
    task: HumanTask,
    send: Callable[[WorkflowHandle[Any, Any]], Awaitable[TaskView]],
    notes: str | None = None,
) -> HumanTask:
    """Sends the Update; once the workflow accepted it, writes the task's new state to the row."""
    task_id = task.id
    # No transaction stays open while the workflow works: its activities write this row too.
    await session.commit()
    try:
        view = await send(client.get_workflow_handle(task.workflow_id))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has finished
            raise TaskNoLongerOpen(task_id) from err
        raise
    values: dict[str, Any] = {
        "status": view.status,
        "claimed_by": view.claimed_by,
        "outcome": view.outcome,
        "queue": view.queue,
        "priority": view.priority,
        "due_at": view.due_at,
        "escalation_level": view.escalation_level,
        "version": view.version,
    }
    if view.status == TaskStatus.DONE:
        values["completed_at"] = utcnow()
        if notes:
            values["notes"] = notes
    # One conditional statement, so a newer state written meanwhile is never overwritten.
    await session.exec(
        update(HumanTask)
        .where(col(HumanTask.id) == task_id, col(HumanTask.version) < view.version)
        .values(**values)
    )
    await session.commit()
    fresh = await session.get(HumanTask, task_id, populate_existing=True)
    assert fresh is not None
    return fresh
