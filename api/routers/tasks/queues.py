"""Task queues: where human tasks wait, picked by skills; each may have a supervisor who is
told when a task is overdue, and a queue overdue tasks move on to."""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.exceptions import RequestValidationError
from sqlmodel import col, select

from api.deps import RetailerDep, SessionDep
from winback.platform.db import retry_on_conflict
from winback.tasks.agent_models import (
    DEFAULT_QUEUE,
    NAME_PATTERN,
    Agent,
    Queue,
    QueueCreate,
    QueuePublic,
)

router = APIRouter(prefix="/v1/queues", tags=["agents"])
QueueName = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=60, description="e.g. `shoes-es`.")
]


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


@router.put(
    "/{name}",
    response_model=QueuePublic,
    responses={
        status.HTTP_200_OK: {"description": "Replaced"},
        status.HTTP_201_CREATED: {"model": QueuePublic, "description": "Created"},
    },
)
async def put_queue(
    name: QueueName,
    body: QueueCreate,
    retailer: RetailerDep,
    session: SessionDep,
    response: Response,
) -> QueuePublic:
    """Creates (201) or replaces (200) a queue. `supervisor_id` must be one of the retailer's
    agents; `escalate_to` another of its queues (or `default`, which always exists)."""
    if body.supervisor_id is not None:
        supervisor = select(Agent.id).where(
            Agent.retailer_id == retailer.id, Agent.agent_id == body.supervisor_id
        )
        if (await session.exec(supervisor)).first() is None:
            raise _invalid("supervisor_id", f"no agent {body.supervisor_id!r}")
    if body.escalate_to is not None:
        if body.escalate_to == name:
            raise _invalid("escalate_to", "a queue cannot escalate to itself")
        target = select(Queue.id).where(
            Queue.retailer_id == retailer.id, Queue.name == body.escalate_to
        )
        if body.escalate_to != DEFAULT_QUEUE and (await session.exec(target)).first() is None:
            raise _invalid("escalate_to", f"no queue {body.escalate_to!r}")

    async def upsert() -> Queue:
        query = select(Queue).where(Queue.retailer_id == retailer.id, Queue.name == name)
        queue = (await session.exec(query)).first()
        response.status_code = status.HTTP_200_OK
        if queue is None:
            queue = Queue(retailer_id=retailer.id, name=name)
            response.status_code = status.HTTP_201_CREATED
        queue.sqlmodel_update(body.model_dump())
        session.add(queue)
        return queue

    # Two PUTs of a new queue at once: the loser of the insert replaces it (200), no 409.
    queue = await retry_on_conflict(session, upsert, keep=[retailer])
    return QueuePublic.model_validate(queue)


@router.get("", response_model=list[QueuePublic])
async def list_queues(retailer: RetailerDep, session: SessionDep) -> list[QueuePublic]:
    """The retailer's queues, by name. Tasks that match none go to `default`."""
    rows = await session.exec(
        select(Queue).where(Queue.retailer_id == retailer.id).order_by(col(Queue.name))
    )
    return [QueuePublic.model_validate(q) for q in rows]
