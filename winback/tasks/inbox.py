"""Listing the inbox: which tasks an agent sees, in the order they should be worked.

The JSON API and the agents' console list through here, so both show the same tasks in the
same order and count them the same way. Overdue first (past due, or already escalated for
missing its due time), then by due time, then by priority, highest first.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, and_, case, cast, func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.tasks.agent_models import Agent, Queue
from winback.tasks.models import HumanTask
from workflows.vocabulary import TaskStatus


class InboxView:
    """The console's three lists: what I hold, my queues' tasks, every task (supervisors)."""

    MINE = "mine"
    QUEUES = "queues"
    ALL = "all"

    FOR_AGENTS = (MINE, QUEUES)
    FOR_SUPERVISORS = (MINE, QUEUES, ALL)


def views_for(agent: Agent) -> tuple[str, ...]:
    return InboxView.FOR_SUPERVISORS if agent.is_supervisor else InboxView.FOR_AGENTS


@dataclass
class InboxQuery:
    """What to list. ``view`` narrows to the agent's own tasks or queues; ``None``: all of the
    retailer's tasks (the JSON API lets any agent list them, as it always has)."""

    view: str | None = None
    statuses: Sequence[str] = TaskStatus.ACTIVE
    queue: str | None = None
    skill: str | None = None
    limit: int = 100


def _overdue(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(HumanTask.status).in_(TaskStatus.ACTIVE),
        or_(col(HumanTask.due_at) <= now, col(HumanTask.escalation_level) > 0),
    )


def _scope(agent: Agent, view: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [col(HumanTask.retailer_id) == agent.retailer_id]
    if view == InboxView.MINE:
        where.append(col(HumanTask.claimed_by) == agent.agent_id)
    elif view == InboxView.QUEUES:
        # My queues' tasks, and whatever someone handed me from another queue.
        where.append(
            or_(
                col(HumanTask.queue).in_(agent.queues or []),
                col(HumanTask.claimed_by) == agent.agent_id,
            )
        )
    return where


async def list_tasks(
    session: AsyncSession, *, agent: Agent, query: InboxQuery, now: datetime
) -> list[HumanTask]:
    """The agent's retailer's tasks that match ``query``, in working order."""
    statement = select(HumanTask).where(
        *_scope(agent, query.view), col(HumanTask.status).in_(query.statuses)
    )
    if query.queue is not None:
        statement = statement.where(HumanTask.queue == query.queue)
    if query.skill is not None:
        # The JSON list's text holds each skill in quotes; skills have no quotes of their own.
        statement = statement.where(
            cast(col(HumanTask.skills), String).contains(f'"{query.skill}"', autoescape=True)
        )
    rows = await session.exec(
        statement.order_by(
            case((_overdue(now), 0), else_=1),
            col(HumanTask.due_at),
            col(HumanTask.priority).desc(),
            col(HumanTask.created_at),
            col(HumanTask.id),
        ).limit(query.limit)
    )
    return list(rows)


async def view_counts(session: AsyncSession, *, agent: Agent) -> dict[str, int]:
    """How many open or claimed tasks each of the agent's views holds."""
    counts: dict[str, int] = {}
    for view in views_for(agent):
        statement = select(func.count()).where(
            *_scope(agent, view), col(HumanTask.status).in_(TaskStatus.ACTIVE)
        )
        counts[view] = int((await session.exec(statement)).one())
    return counts


async def find_agent(session: AsyncSession, *, retailer_id: str, agent_id: str) -> Agent | None:
    statement = select(Agent).where(Agent.retailer_id == retailer_id, Agent.agent_id == agent_id)
    return (await session.exec(statement)).first()


async def list_agents(session: AsyncSession, *, retailer_id: str) -> list[Agent]:
    statement = select(Agent).where(Agent.retailer_id == retailer_id)
    return list(await session.exec(statement.order_by(col(Agent.agent_id))))


async def retailer_queues(session: AsyncSession, *, retailer_id: str) -> list[Queue]:
    rows = await session.exec(
        select(Queue).where(Queue.retailer_id == retailer_id).order_by(col(Queue.name))
    )
    return list(rows)


async def inbox_version(session: AsyncSession, *, retailer_id: str) -> tuple[int, int, int]:
    """Changes whenever any of the retailer's inbox rows does: a new task adds a row, every
    accepted change (claim, release, reassignment, completion) raises that task's ``version``,
    and an escalation raises its ``escalation_level``. Cheap enough to ask every second, and it
    sees changes written by any process (the API's or the worker's)."""
    statement = select(
        func.count(),
        func.coalesce(func.sum(HumanTask.version), 0),
        func.coalesce(func.sum(HumanTask.escalation_level), 0),
    ).where(HumanTask.retailer_id == retailer_id)
    count, versions, escalations = (await session.exec(statement)).one()
    return int(count), int(versions), int(escalations)
