"""The inbox of human tasks: routing, the listing row, reminders and escalations.

The workflow that waits for a task decides; these activities write down what it decided and
notify people (supervisors, holders) through the same channel adapters as shopper messages.
"""

import logging
from datetime import timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging.notify import Recipient, notify
from activities.messaging.sends import heartbeating
from winback.carts.context import load_cart_context
from winback.customers.models import Customer
from winback.feedback.models import FeedbackCase
from winback.messaging.channels.router import Adapters
from winback.messaging.reconcile import EVENT_GRACE
from winback.platform.db import SessionFactory, session_scope, sqlite_writer
from winback.tasks.agent_models import Agent, Queue
from winback.tasks.mirror import close_row
from winback.tasks.models import Escalation, HumanTask
from winback.tasks.routing import choose_queue, skills_for_cart
from workflows.errors import ErrorType
from workflows.tasks.types import (
    EscalateTaskInput,
    EscalateTaskResult,
    OpenTaskInput,
    OpenTaskResult,
    RemindTaskInput,
    TaskChange,
)

log = logging.getLogger(__name__)


class TaskInboxActivities:
    def __init__(
        self, sessions: SessionFactory, adapters: Adapters, event_grace: timedelta = EVENT_GRACE
    ) -> None:
        self._sessions = sessions
        self._adapters = adapters
        self._event_grace = event_grace  # how long a crashed email waits for SendGrid's event

    @activity.defn
    async def open_task(self, input: OpenTaskInput) -> OpenTaskResult:
        """Routes the task to a queue by skills and writes its inbox row (once)."""
        async with session_scope(self._sessions) as session:
            existing = await session.get(HumanTask, input.task_id)
            if existing is not None:
                return OpenTaskResult(queue=existing.queue, skills=existing.skills)
            spec = input.spec
            customer_id, details, needed = None, dict(spec.details), set(spec.skills)
            if spec.cart_id:
                ctx = await load_cart_context(session, input.retailer_id, spec.cart_id)
                if ctx is not None:
                    customer_id = ctx.cart.customer_id
                    needed |= skills_for_cart(ctx.cart.items, ctx.customer)
                    details.setdefault("cart_url", ctx.cart_url)
                    details.setdefault("cart_value", ctx.cart.value)
                    details.setdefault("currency", ctx.cart.currency)
                    details.setdefault("items", ctx.cart.items)
                    if ctx.cart.callback_phone:  # typed into the nudge's "call me back" form
                        details.setdefault("callback_phone", ctx.cart.callback_phone)
                    if ctx.customer is not None:
                        details.setdefault("shopper_name", ctx.customer.name)
                        details.setdefault("shopper_phone", ctx.customer.phone)
                        details.setdefault("shopper_email", ctx.customer.email)
                    if not details.get("shopper_phone") and ctx.cart.callback_phone:
                        details["shopper_phone"] = ctx.cart.callback_phone
            elif spec.case_id:
                case = await session.get(FeedbackCase, int(spec.case_id))
                customer = (
                    await session.get(Customer, case.customer_id)
                    if case and case.customer_id
                    else None
                )
                if customer is not None:  # who to call, and in which language
                    customer_id = customer.id
                    needed |= skills_for_cart([], customer)
                    details.setdefault("customer_name", customer.name)
                    details.setdefault("customer_phone", customer.phone)
                    details.setdefault("customer_email", customer.email)
            queues = (
                await session.exec(select(Queue).where(Queue.retailer_id == input.retailer_id))
            ).all()
            queue = choose_queue(list(queues), sorted(needed), requested=spec.queue)
            row = HumanTask(
                id=input.task_id,
                retailer_id=input.retailer_id,
                workflow_id=input.workflow_id,
                customer_id=customer_id,
                kind=spec.kind,
                title=spec.title,
                queue=queue,
                skills=sorted(needed),
                priority=spec.priority,
                allowed_outcomes=list(spec.allowed_outcomes),
                cart_id=spec.cart_id,
                case_id=spec.case_id,
                details=details,
                due_at=input.due_at,
                created_at=input.at,
            )
            await session.commit()  # the reads end: the write transaction starts with its write
            async with sqlite_writer(session):
                session.add(row)
                await session.commit()
            return OpenTaskResult(queue=queue, skills=sorted(needed))

    @activity.defn
    async def close_task(self, change: TaskChange) -> None:
        """Writes the task's final state (done or cancelled) into its inbox row."""
        async with session_scope(self._sessions) as session:
            # The transaction starts with its write, queued behind this process's other
            # SQLite writers (not napping in SQLite's busy handler).
            async with sqlite_writer(session):
                written = await close_row(session, change)
                await session.commit()
            if not written:  # a newer change already landed, or there is no such row
                await _task(session, change.task_id)

    @activity.defn
    async def escalate_task(self, input: EscalateTaskInput) -> EscalateTaskResult:
        """Raises the task's priority, moves it on if its queue says so, and tells the next
        person up: the case's escalation chain if it has one, else the queue's supervisor.
        Every escalation is recorded."""
        async with heartbeating():  # a killed worker's attempt is retried within seconds
            return await self._escalate_task(input)

    async def _escalate_task(self, input: EscalateTaskInput) -> EscalateTaskResult:
        async with session_scope(self._sessions) as session:
            task = await _task(session, input.task_id)
            queue = await _queue(session, input.retailer_id, task.queue)
            from_queue = task.queue
            if task.escalation_level < input.level:  # not yet applied (this may be a retry)
                task.escalation_level = input.level
                task.priority += 1
                task.due_at = input.next_due_at
                if queue is not None and queue.escalate_to:
                    task.queue = queue.escalate_to
                session.add(task)
            who = await self._next_up(session, input, task, queue)
            result = EscalateTaskResult(queue=task.queue, priority=task.priority)
            subject = f"Overdue (level {input.level}): {task.title}"
            body = (
                f"The task '{task.title}' in queue {from_queue} passed its due time. It is now in "
                f"queue {task.queue} with priority {task.priority}."
            )
            already = (
                await session.exec(
                    select(Escalation).where(
                        Escalation.task_id == task.id, Escalation.level == input.level
                    )
                )
            ).first()
            if already is None:
                session.add(
                    Escalation(
                        retailer_id=input.retailer_id,
                        task_id=task.id,
                        case_id=int(task.case_id) if task.case_id else None,
                        cart_id=task.cart_id,
                        level=input.level,
                        notified=(who.email or who.phone) if who else None,
                        queue=task.queue,
                        at=input.at,
                    )
                )
        if who is not None:
            key = f"{input.task_id}/escalation-{input.level}"
            if await self._notify(who, key, subject, body, input):
                result.notified.append(who.name)
        else:
            log.warning("task %s is overdue and nobody is set to hear of it", input.task_id)
        return result

    async def _next_up(
        self, session: AsyncSession, input: EscalateTaskInput, task: HumanTask, queue: Queue | None
    ) -> Recipient | None:
        chain = task.details.get("escalation_chain") or []
        if chain:
            person = chain[min(input.level, len(chain)) - 1]
            return Recipient(person["name"], person.get("email"), person.get("phone"))
        supervisor = await _agent(
            session, input.retailer_id, queue.supervisor_id if queue else None
        )
        if supervisor is None:
            return None
        return Recipient(supervisor.name, supervisor.email, supervisor.phone)

    @activity.defn
    async def remind_task(self, input: RemindTaskInput) -> None:
        """Reminds the holder (or, if nobody holds it, the queue's supervisor) of the due time."""
        async with heartbeating():  # a killed worker's attempt is retried within seconds
            return await self._remind_task(input)

    async def _remind_task(self, input: RemindTaskInput) -> None:
        async with session_scope(self._sessions) as session:
            task = await _task(session, input.task_id)
            queue = await _queue(session, input.retailer_id, task.queue)
            who = task.claimed_by or (queue.supervisor_id if queue else None)
            agent = await _agent(session, input.retailer_id, who)
            subject = f"Due soon: {task.title}"
            body = f"The task '{task.title}' is due at {task.due_at.isoformat(timespec='minutes')}."
        if agent is not None:
            holder = Recipient(agent.name, agent.email, agent.phone)
            await self._notify(holder, f"{input.task_id}/reminder", subject, body, input)

    async def _notify(
        self,
        who: Recipient,
        key: str,
        subject: str,
        body: str,
        input: EscalateTaskInput | RemindTaskInput,
    ) -> bool:
        """Emails the person (or texts them without an email), once per key."""
        channel = "email" if who.email else "sms"
        if not await notify(
            self._sessions,
            self._adapters,
            input.retailer_id,
            who,
            channel,
            key,
            subject,
            body,
            input.at,
            event_grace=self._event_grace,
        ):
            log.warning("%s has no email or phone to notify", who.name)
            return False
        return True


async def _task(session: AsyncSession, task_id: str) -> HumanTask:
    task = await session.get(HumanTask, task_id)
    if task is None:
        raise ApplicationError(
            f"no task {task_id}", type=ErrorType.UNKNOWN_TASK, non_retryable=True
        )
    return task


async def _queue(session: AsyncSession, retailer_id: str, name: str) -> Queue | None:
    query = select(Queue).where(Queue.retailer_id == retailer_id, Queue.name == name)
    return (await session.exec(query)).first()


async def _agent(session: AsyncSession, retailer_id: str, agent_id: str | None) -> Agent | None:
    if agent_id is None:
        return None
    query = select(Agent).where(Agent.retailer_id == retailer_id, Agent.agent_id == agent_id)
    return (await session.exec(query)).first()
