"""Human tasks, for agents (`X-Agent-Token`): list, claim, release, reassign, complete.

Task ids contain a `/` (`cart-acme-c1/task-1`: the workflow's id, then the task's number), so
they go into the path as they are: `GET /v1/tasks/cart-acme-c1/task-1`, and the actions are
`POST /v1/tasks/cart-acme-c1/task-1/claim` (`/release`, `/reassign`, `/complete`). Every change
goes to the task's workflow as an Update; the workflow accepts or refuses it, and only an
accepted change reaches the inbox. An agent only ever sees its own retailer's tasks.
"""

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator

from api.deps import (
    AgentDep,
    AgentTokenDep,
    SessionDep,
    TemporalClientDep,
    agent_of_token,
    hash_key,
)
from api.metrics import TASK_AGE_AT_CLAIM
from winback.platform.clock import utcnow
from winback.tasks import commands as task_commands
from winback.tasks.agent_models import SKILL_PATTERN, Agent
from winback.tasks.inbox import InboxQuery, InboxView, find_agent
from winback.tasks.inbox import list_tasks as list_inbox
from winback.tasks.models import HumanTask, TaskPublic
from winback.tasks.supervision import may_reassign
from workflows.vocabulary import TaskStatus

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TaskId = Annotated[
    str, Path(max_length=300, description="e.g. `cart-acme-c1/task-1` (the `/` stays as is).")
]
StatusName = Literal["open", "claimed", "done", "cancelled"]
MAX_TASK_DATA_BYTES = 32_000


class Reassignment(BaseModel):
    to_agent_id: str = Field(min_length=1, max_length=60, description="An agent of this retailer.")


class Completion(BaseModel):
    outcome: str = Field(
        min_length=1, max_length=40, description="One of the task's `allowed_outcomes`."
    )
    notes: str = Field(default="", max_length=10000)
    data: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description=f"Typed data some kinds of task need (at most {MAX_TASK_DATA_BYTES} bytes "
        "as JSON).",
    )

    @field_validator("data")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        # It travels in a workflow Update: far below Temporal's payload limit, or the workflow
        # task fails and the agent sees 503s forever instead of this 422.
        size = len(json.dumps(value, separators=(",", ":"), default=str).encode())
        if size > MAX_TASK_DATA_BYTES:
            raise ValueError(f"{size} bytes as JSON; at most {MAX_TASK_DATA_BYTES}")
        return value


@router.get("", response_model=list[TaskPublic])
async def list_tasks(
    agent: AgentDep,
    session: SessionDep,
    status_: Annotated[
        list[StatusName] | None,
        Query(
            alias="status",
            max_length=4,
            description="Repeat for several; default: open and claimed.",
        ),
    ] = None,
    mine: Annotated[bool, Query(description="Only the tasks I hold.")] = False,
    queue: Annotated[str | None, Query(max_length=60)] = None,
    skill: Annotated[str | None, Query(max_length=80, description="e.g. `lang:es`.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TaskPublic]:
    """Tasks of my retailer: overdue first (past due, or already escalated), then by due time,
    then by priority (highest first)."""
    if skill is not None and not SKILL_PATTERN.fullmatch(skill):
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "skill"),
                    "msg": "use 'category:<product category>' or 'lang:<code>'",
                    "type": "value_error",
                }
            ]
        )
    now = utcnow()
    query = InboxQuery(
        view=InboxView.MINE if mine else None,
        statuses=status_ or TaskStatus.ACTIVE,
        queue=queue,
        skill=skill,
        limit=limit,
    )
    rows = await list_inbox(session, agent=agent, query=query, now=now)
    return [task_commands.task_public(t, now) for t in rows]


@router.get("/{task_id:path}", response_model=TaskPublic)
async def read_task(task_id: TaskId, token: AgentTokenDep, session: SessionDep) -> TaskPublic:
    """One task, with the cart or case it is about in `details`."""
    _, task = await _agent_and_task(session, token, task_id)
    return task_commands.task_public(task, utcnow())


@router.post("/{task_id:path}/claim", response_model=TaskPublic)
async def claim_task(
    task_id: TaskId, token: AgentTokenDep, session: SessionDep, client: TemporalClientDep
) -> TaskPublic:
    """Takes the task. Only one agent can hold it: 409 if another agent does. Claiming a task
    one already holds changes nothing."""
    agent, task = await _agent_and_task(session, token, task_id)
    task = await task_commands.claim(session, client, task=task, agent_id=agent.agent_id)
    now = utcnow()
    TASK_AGE_AT_CLAIM.labels(task.kind).observe((now - task.created_at).total_seconds())
    return task_commands.task_public(task, now)


@router.post("/{task_id:path}/release", response_model=TaskPublic)
async def release_task(
    task_id: TaskId, token: AgentTokenDep, session: SessionDep, client: TemporalClientDep
) -> TaskPublic:
    """Gives a task I hold back to its queue (403 if I do not hold it)."""
    agent, task = await _agent_and_task(session, token, task_id)
    task = await task_commands.release(session, client, task=task, agent_id=agent.agent_id)
    return task_commands.task_public(task, utcnow())


@router.post("/{task_id:path}/reassign", response_model=TaskPublic)
async def reassign_task(
    task_id: TaskId,
    body: Reassignment,
    token: AgentTokenDep,
    session: SessionDep,
    client: TemporalClientDep,
) -> TaskPublic:
    """Hands the task to another agent. Supervisors only: an agent marked `is_supervisor`, or
    the supervisor of the task's queue."""
    agent, task = await _agent_and_task(session, token, task_id)
    if not await may_reassign(session, agent=agent, task=task):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a supervisor can reassign tasks")
    if await find_agent(session, retailer_id=agent.retailer_id, agent_id=body.to_agent_id) is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "to_agent_id"),
                    "msg": f"no agent {body.to_agent_id!r}",
                    "type": "value_error",
                }
            ]
        )
    task = await task_commands.reassign(
        session, client, task=task, to_agent_id=body.to_agent_id, by_agent_id=agent.agent_id
    )
    return task_commands.task_public(task, utcnow())


@router.post("/{task_id:path}/complete", response_model=TaskPublic)
async def complete_task(
    task_id: TaskId,
    body: Completion,
    token: AgentTokenDep,
    session: SessionDep,
    client: TemporalClientDep,
) -> TaskPublic:
    """Records the outcome of a task I hold; the workflow goes on with it. 422 names the
    allowed outcomes; 409 if the task is already done or its workflow has ended."""
    agent, task = await _agent_and_task(session, token, task_id)
    task = await task_commands.complete(
        session,
        client,
        task=task,
        agent_id=agent.agent_id,
        outcome=body.outcome,
        notes=body.notes,
        data=body.data,
    )
    return task_commands.task_public(task, utcnow())


async def _agent_and_task(session: SessionDep, token: str, task_id: str) -> tuple[Agent, HumanTask]:
    """The caller and one of its retailer's tasks, in one query: 401 for an unknown token, 404
    for a task its retailer does not have (as ``AgentDep`` and a task lookup would say)."""
    found = await task_commands.find_agent_task(
        session, token_hash=hash_key(token), task_id=task_id
    )
    if found is None:
        await agent_of_token(session, token)  # an unknown token is a 401, whatever the task
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}")
    return found
