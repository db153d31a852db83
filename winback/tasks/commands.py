"""Agents' changes to a human task: sent to the workflow that waits for it, then mirrored.

The workflow is the source of truth. Each change is an Update whose validator rejects a wrong
one (a task held by someone else, an outcome it does not allow, a task already done) before it
touches history; a rejection raises ``WorkflowUpdateFailedError`` and leaves the inbox row as it
was. Only an accepted change is written to the row, and only if it is newer than what the row
shows: the workflow's own activities write the same row, and the two can arrive in any order.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from winback.platform.clock import utcnow
from winback.platform.db import sqlite_writer
from winback.tasks.agent_models import Agent
from winback.tasks.models import HumanTask, TaskPublic
from workflows.tasks.human_tasks import HumanTaskWorkflow
from workflows.tasks.types import TaskClaim, TaskCompletion, TaskReassign, TaskRelease, TaskView
from workflows.vocabulary import TaskStatus

# How long one call to Temporal may take; past it the caller gets a 503 saying whether a retry
# is safe (a second claim by the holder is a no-op; a second completion with the same outcome
# by the same agent answers with the applied result).
UPDATE_RPC_TIMEOUT = timedelta(seconds=30)
# The inbox row is written by the workflow's activity a moment before the workflow itself knows
# the task; a claim in that moment waits for it (at most this long) instead of answering 404.
NOT_YET_KNOWN_PATIENCE = timedelta(seconds=10)


class UpdateUnconfirmed(Exception):
    """Temporal did not confirm the change in time: it may or may not have been applied."""

    def __init__(self, task_id: str, *, safe_to_retry: bool) -> None:
        super().__init__(f"task {task_id}: the workflow did not confirm the change in time")
        self.task_id = task_id
        self.safe_to_retry = safe_to_retry


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


async def find_agent_task(
    session: AsyncSession, *, token_hash: str, task_id: str
) -> tuple[Agent, HumanTask] | None:
    """The agent a token belongs to and one task of the agent's retailer, in one query (an
    agent's every action on a task starts here); None if either is unknown."""
    query = (
        select(Agent, HumanTask)
        .join(HumanTask, col(HumanTask.retailer_id) == col(Agent.retailer_id))
        .where(col(Agent.token_hash) == token_hash, col(HumanTask.id) == task_id)
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


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
        wait_until_known=True,
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
        safe_to_retry=False,  # a second release by the same agent is refused (not the holder)
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
    """Completes the task. Completing it again with the same outcome by the same agent (a
    retry after a 503, a double click) answers with the applied completion, not a conflict."""
    arg = TaskCompletion(
        task_id=task.id, agent_id=agent_id, outcome=outcome, notes=notes, data=data
    )
    workflow_id = task.workflow_id
    try:
        return await _apply(
            session,
            client,
            task,
            lambda h: h.execute_update(
                HumanTaskWorkflow.complete_task, arg, rpc_timeout=UPDATE_RPC_TIMEOUT
            ),
            notes=notes,
        )
    except (WorkflowUpdateFailedError, TaskNoLongerOpen) as err:
        if isinstance(err, WorkflowUpdateFailedError) and _rejection(err) != "TaskClosed":
            raise
        done = await _completed_as(session, client, arg, workflow_id)
        if done is None:
            raise
        return done


async def _completed_as(
    session: AsyncSession, client: Client, arg: TaskCompletion, workflow_id: str
) -> HumanTask | None:
    """The task, if it is done with ``arg``'s outcome by ``arg``'s agent; else None. Asks the
    workflow (the source of truth) while it runs; once it has finished, its last activity has
    written the final state to the row."""
    view: TaskView | None = None
    try:
        views = await client.get_workflow_handle(workflow_id).query(HumanTaskWorkflow.tasks)
        view = next((v for v in views if v.task_id == arg.task_id), None)
    except RPCError:
        view = None
    row = await session.get(HumanTask, arg.task_id, populate_existing=True)
    if row is None:
        return None
    status, holder, outcome = (
        (view.status, view.claimed_by, view.outcome)
        if view is not None
        else (row.status, row.claimed_by, row.outcome)
    )
    if (status, holder, outcome) != (TaskStatus.DONE, arg.agent_id, arg.outcome):
        return None
    if row.status != TaskStatus.DONE and view is not None:
        await _write_view(session, arg.task_id, view, arg.notes)
        row = await session.get(HumanTask, arg.task_id, populate_existing=True)
    return row


def _rejection(err: WorkflowUpdateFailedError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def _apply(
    session: AsyncSession,
    client: Client,
    task: HumanTask,
    send: Callable[[WorkflowHandle[Any, Any]], Awaitable[TaskView]],
    notes: str | None = None,
    *,
    wait_until_known: bool = False,
    safe_to_retry: bool = True,
) -> HumanTask:
    """Sends the Update; once the workflow accepted it, writes the task's new state to the row."""
    task_id = task.id
    # No transaction stays open while the workflow works: its activities write this row too.
    await session.commit()
    handle = client.get_workflow_handle(task.workflow_id)
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + NOT_YET_KNOWN_PATIENCE.total_seconds()
    pause = 0.05
    while True:
        try:
            view = await send(handle)
            break
        except WorkflowUpdateFailedError as err:
            # Listed (the row exists) but not yet known to its workflow: it will be shortly.
            if not wait_until_known or _rejection(err) != "TaskNotFound":
                raise
            if loop.time() >= give_up_at:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        except WorkflowUpdateRPCTimeoutOrCancelledError as err:
            raise UpdateUnconfirmed(task_id, safe_to_retry=safe_to_retry) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # the workflow has finished
                raise TaskNoLongerOpen(task_id) from err
            raise UpdateUnconfirmed(task_id, safe_to_retry=safe_to_retry) from err
    if view.written_by_workflow:
        # The workflow writes this state into the row in the workflow task that answers (a
        # local activity): answer with it, no second write. (Only a write that outlasts the
        # workflow task's heartbeat, ~8 s, lets the answer arrive first; the row follows.)
        for name, value in _row_values(view, notes).items():
            set_committed_value(task, name, value)
        return task
    try:
        written = await _write_view(session, task_id, view, notes)
    except OperationalError as err:
        # Applied in the workflow, not mirrored in the row (the database was locked past its
        # busy timeout): the 503 says whether doing it again is safe, as for a lost answer.
        await session.rollback()
        raise UpdateUnconfirmed(task_id, safe_to_retry=safe_to_retry) from err
    if written is not None:
        # The row now holds exactly what we wrote: answer from it without reading it back.
        for name, value in written.items():
            set_committed_value(task, name, value)
        return task
    fresh = await session.get(HumanTask, task_id, populate_existing=True)
    assert fresh is not None
    return fresh


def _row_values(view: TaskView, notes: str | None) -> dict[str, Any]:
    """The row's columns as the workflow's view of the task says."""
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
        values["completed_at"] = view.completed_at or utcnow()
        if notes:
            values["notes"] = notes
    return values


async def _write_view(
    session: AsyncSession, task_id: str, view: TaskView, notes: str | None
) -> dict[str, Any] | None:
    """Mirrors the workflow's view of the task into the row, unless a newer one is there.
    Returns the values written, or None if the row already showed a newer version."""
    values = _row_values(view, notes)
    # End any read transaction first, so the write transaction starts with its write (no read
    # snapshot older than the lock below).
    await session.commit()
    # Queued on the process's SQLite writer lock (a no-op on PostgreSQL): without it the agents'
    # concurrent writes all waited in SQLite's busy handler, napping up to 100 ms a time while
    # the lock sat free; that, not the Update, was most of a claim's or completion's time.
    async with sqlite_writer(session):
        # One conditional Core statement, so a newer state written meanwhile is never
        # overwritten (and no ORM bulk-update machinery per request).
        result = await (await session.connection()).execute(
            update(HumanTask)
            .where(col(HumanTask.id) == task_id, col(HumanTask.version) < view.version)
            .values(**values)
        )
        await session.commit()
    return values if result.rowcount == 1 else None
