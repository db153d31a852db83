"""What a supervisor watches: the load of each queue, the tasks past their SLA, the latest
escalations and how many tasks each agent holds. Read-only, one retailer at a time."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.tasks.agent_models import Agent, Queue
from winback.tasks.commands import is_overdue
from winback.tasks.models import Escalation, HumanTask
from workflows.vocabulary import TaskStatus

MAX_ESCALATIONS = 20


@dataclass
class QueueLoad:
    queue: str
    open: int = 0
    claimed: int = 0
    overdue: int = 0
    supervisor_id: str | None = None


@dataclass
class AgentLoad:
    agent_id: str
    name: str
    holding: int = 0
    overdue: int = 0
    queues: list[str] = field(default_factory=list)


@dataclass
class Overview:
    queues: list[QueueLoad]
    agents: list[AgentLoad]
    past_sla: list[HumanTask]
    escalations: list[Escalation]


async def may_reassign(session: AsyncSession, *, agent: Agent, task: HumanTask) -> bool:
    """Supervisors may hand any task on; an agent only the tasks of a queue it supervises."""
    if agent.is_supervisor:
        return True
    queue = (
        await session.exec(
            select(Queue).where(Queue.retailer_id == agent.retailer_id, Queue.name == task.queue)
        )
    ).first()
    return queue is not None and queue.supervisor_id == agent.agent_id


async def overview(session: AsyncSession, *, retailer_id: str, now: datetime) -> Overview:
    active = list(
        await session.exec(
            select(HumanTask)
            .where(
                HumanTask.retailer_id == retailer_id, col(HumanTask.status).in_(TaskStatus.ACTIVE)
            )
            .order_by(col(HumanTask.due_at), col(HumanTask.id))
        )
    )
    queues = {
        q.name: QueueLoad(q.name, supervisor_id=q.supervisor_id)
        for q in await session.exec(select(Queue).where(Queue.retailer_id == retailer_id))
    }
    agents = {
        a.agent_id: AgentLoad(a.agent_id, a.name, queues=list(a.queues))
        for a in await session.exec(
            select(Agent).where(Agent.retailer_id == retailer_id).order_by(col(Agent.agent_id))
        )
    }
    for task in active:
        load = queues.setdefault(task.queue, QueueLoad(task.queue))
        late = is_overdue(task, now)
        load.overdue += late
        if task.status == TaskStatus.CLAIMED:
            load.claimed += 1
            holder = agents.get(task.claimed_by or "")
            if holder is not None:
                holder.holding += 1
                holder.overdue += late
        else:
            load.open += 1
    escalations = await session.exec(
        select(Escalation)
        .where(Escalation.retailer_id == retailer_id)
        .order_by(col(Escalation.at).desc(), col(Escalation.id).desc())
        .limit(MAX_ESCALATIONS)
    )
    return Overview(
        queues=sorted(queues.values(), key=lambda q: q.queue),
        agents=list(agents.values()),
        past_sla=[t for t in active if is_overdue(t, now)],
        escalations=list(escalations),
    )
