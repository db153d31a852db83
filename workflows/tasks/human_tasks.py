"""Human tasks for any workflow: a step that waits for a person, with an SLA.

A workflow class inherits ``HumanTaskWorkflow`` and calls ``await self.run_task(spec, stop)``:
it opens an inbox row (routed to a queue by skills), then waits for an agent. Agents act through
Updates whose validators reject a wrong change before it touches history: claiming a task
someone else holds, completing a task one does not hold, an outcome the task does not allow, a
task that is already done. Past its due time a task escalates (priority up, the queue's
supervisor notified, optionally moved to another queue) and keeps waiting. The workflow is the
source of truth; every accepted change bumps ``version`` so the inbox row can follow it in
order.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import search_attributes as sa
from workflows.errors import ErrorType
from workflows.retries import (
    DATABASE_RETRY,
    LOCAL_DATABASE_TIMEOUT,
    NOTIFY_HEARTBEAT_TIMEOUT,
    NOTIFY_RETRY,
)
from workflows.tasks import activities as task_activities
from workflows.tasks.types import (
    EscalateTaskInput,
    OpenTaskInput,
    RemindTaskInput,
    TaskChange,
    TaskClaim,
    TaskCompletion,
    TaskReassign,
    TaskRelease,
    TaskSpec,
    TaskView,
)
from workflows.vocabulary import TaskStatus

# Writes a completed task's final state (and whatever else its completion records) to the
# database, in place of ``close_task``: see ``HumanTaskWorkflow.run_task``.
CloseCompleted = Callable[[TaskChange, TaskCompletion], Awaitable[None]]


@dataclass
class _Task:
    view: TaskView
    spec: TaskSpec
    completion: TaskCompletion | None = None
    closes_itself: bool = False  # run_task's ``close_completed``: see ``TaskView``


def _reject(message: str, type: str) -> ApplicationError:
    return ApplicationError(message, type=type, non_retryable=True)


class HumanTaskWorkflow:
    """Mixin giving a workflow human tasks and the Updates agents use on them."""

    def _init_tasks(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._task_count = 0

    # --- updates agents send (through the API) ------------------------------------------------

    @workflow.update
    def claim_task(self, claim: TaskClaim) -> TaskView:
        """An agent takes the task; only one agent can hold it."""
        task = self._tasks[claim.task_id]
        self._change(task, status=TaskStatus.CLAIMED, claimed_by=claim.agent_id)
        return task.view

    @claim_task.validator
    def _validate_claim(self, claim: TaskClaim) -> None:
        task = self._active_task(claim.task_id)
        holder = task.view.claimed_by
        if holder is not None and holder != claim.agent_id:
            raise _reject(f"task {claim.task_id} is held by {holder}", ErrorType.TASK_CLAIMED)

    @workflow.update
    def release_task(self, release: TaskRelease) -> TaskView:
        """The holder gives the task back to its queue."""
        task = self._tasks[release.task_id]
        self._change(task, status=TaskStatus.OPEN, claimed_by=None)
        return task.view

    @release_task.validator
    def _validate_release(self, release: TaskRelease) -> None:
        self._held_task(release.task_id, release.agent_id)

    @workflow.update
    def reassign_task(self, reassign: TaskReassign) -> TaskView:
        """A supervisor hands the task to another agent."""
        task = self._tasks[reassign.task_id]
        self._change(task, status=TaskStatus.CLAIMED, claimed_by=reassign.to_agent_id)
        return task.view

    @reassign_task.validator
    def _validate_reassign(self, reassign: TaskReassign) -> None:
        self._active_task(reassign.task_id)

    @workflow.update
    def complete_task(self, completion: TaskCompletion) -> TaskView:
        """The holder records the outcome; the waiting step goes on with it."""
        task = self._tasks[completion.task_id]
        task.completion = completion
        self._change(
            task,
            status=TaskStatus.DONE,
            outcome=completion.outcome,
            completed_at=workflow.now(),
            written_by_workflow=task.closes_itself,
        )
        return task.view

    @complete_task.validator
    def _validate_completion(self, completion: TaskCompletion) -> None:
        task = self._held_task(completion.task_id, completion.agent_id)
        if completion.outcome not in task.spec.allowed_outcomes:
            allowed = ", ".join(task.spec.allowed_outcomes)
            raise _reject(
                f"outcome {completion.outcome!r} is not one of: {allowed}",
                ErrorType.INVALID_OUTCOME,
            )
        self.validate_task_data(task.spec, completion)

    def validate_task_data(self, spec: TaskSpec, completion: TaskCompletion) -> None:
        """Workflows override this to check the typed data a kind of task needs."""

    @workflow.query
    def tasks(self) -> list[TaskView]:
        """Every task this workflow has opened, with its state."""
        return [t.view for t in self._tasks.values()]

    # --- the step -----------------------------------------------------------------------------

    async def run_task(
        self,
        spec: TaskSpec,
        stop: Callable[[], bool],
        until: datetime | None = None,
        *,
        open_locally: bool = False,
        close_completed: CloseCompleted | None = None,
    ) -> TaskCompletion | None:
        """Opens a task and waits for its completion; None if ``stop()`` or ``until`` (when the
        task stops making sense, e.g. the cart expires) came first.

        The inbox row is written by the ``open_task`` activity (``open_locally``: as a local
        activity, in the workflow task that decided to open it). The task's final state goes
        to its row with the ``close_task`` activity, or, for a completed task and a
        ``close_completed`` given, with that: a workflow whose completion records something of
        its own (a cart's call) writes both in one step."""
        self._task_count += 1
        workflow_id = workflow.info().workflow_id
        task_id = f"{workflow_id}/task-{self._task_count}"
        sla = timedelta(seconds=spec.sla_seconds)
        due_at = workflow.now() + sla
        opening = OpenTaskInput(
            task_id=task_id,
            workflow_id=workflow_id,
            retailer_id=self.retailer_id,
            spec=spec,
            due_at=due_at,
            at=workflow.now(),
        )
        if open_locally:
            opened = await workflow.execute_local_activity(
                task_activities.open_task,
                opening,
                start_to_close_timeout=LOCAL_DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
                summary=f"open task: {spec.title}",
            )
        else:
            opened = await workflow.execute_activity(
                task_activities.open_task,
                opening,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DATABASE_RETRY,
                summary=f"open task: {spec.title}",
            )
        task = _Task(
            view=TaskView(
                task_id=task_id,
                kind=spec.kind,
                status=TaskStatus.OPEN,
                queue=opened.queue,
                priority=spec.priority,
                due_at=due_at,
            ),
            spec=spec,
            closes_itself=close_completed is not None,
        )
        self._tasks[task_id] = task
        self._show_open_tasks()

        remind_at = due_at - timedelta(seconds=spec.remind_before_seconds or 0)
        reminded = not spec.remind_before_seconds
        while task.completion is None and not stop():
            can_escalate = task.view.escalation_level < spec.max_escalations
            wake_at: datetime | None = task.view.due_at if reminded else remind_at
            if reminded and not can_escalate:
                wake_at = until  # nothing more to do but wait (or give up at ``until``)
            elif until is not None and wake_at is not None:
                wake_at = min(wake_at, until)
            try:
                await workflow.wait_condition(
                    lambda: task.completion is not None or stop(),
                    timeout=max(wake_at - workflow.now(), timedelta(0)) if wake_at else None,
                    timeout_summary=f"{'reminder' if not reminded else 'SLA'}: {spec.title}",
                )
            except TimeoutError:
                if until is not None and workflow.now() >= until:
                    break
                if not reminded:
                    reminded = True
                    await self._remind(task)
                else:
                    await self._escalate(task, sla)

        if task.completion is None:
            self._change(task, status=TaskStatus.CANCELLED)
        change = TaskChange(
            task_id=task_id,
            status=task.view.status,
            version=task.view.version,
            at=task.view.completed_at or workflow.now(),
            claimed_by=task.view.claimed_by,
            outcome=task.view.outcome,
            notes=task.completion.notes if task.completion else None,
        )
        if task.completion is not None and close_completed is not None:
            await close_completed(change, task.completion)
        else:
            await workflow.execute_activity(
                task_activities.close_task,
                change,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DATABASE_RETRY,
                summary=f"close task: {spec.title}",
            )
        self._show_open_tasks()
        return task.completion

    async def _remind(self, task: _Task) -> None:
        await workflow.execute_activity(
            task_activities.remind_task,
            RemindTaskInput(
                task_id=task.view.task_id, retailer_id=self.retailer_id, at=workflow.now()
            ),
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=NOTIFY_HEARTBEAT_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary=f"reminder: {task.spec.title}",
        )

    async def _escalate(self, task: _Task, sla: timedelta) -> None:
        level = task.view.escalation_level + 1
        next_due = workflow.now() + sla
        result = await workflow.execute_activity(
            task_activities.escalate_task,
            EscalateTaskInput(
                task_id=task.view.task_id,
                retailer_id=self.retailer_id,
                level=level,
                next_due_at=next_due,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=NOTIFY_HEARTBEAT_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary=f"escalate ({level}): {task.spec.title}",
        )
        task.view.escalation_level = level
        task.view.priority = result.priority
        task.view.queue = result.queue
        task.view.due_at = next_due
        task.view.version += 1  # after the activity: a claim accepted meanwhile keeps its bump
        self._show_open_tasks()

    # --- helpers ------------------------------------------------------------------------------

    @property
    def retailer_id(self) -> str:
        raise NotImplementedError

    def _active_task(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise _reject(f"no task {task_id} in this workflow", ErrorType.TASK_NOT_FOUND)
        if task.view.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
            raise _reject(f"task {task_id} is already {task.view.status}", ErrorType.TASK_CLOSED)
        return task

    def _held_task(self, task_id: str, agent_id: str) -> _Task:
        task = self._active_task(task_id)
        if task.view.claimed_by != agent_id:
            holder = task.view.claimed_by or "nobody (claim it first)"
            raise _reject(
                f"task {task_id} is held by {holder}, not {agent_id}", ErrorType.NOT_TASK_HOLDER
            )
        return task

    def _change(self, task: _Task, **fields: object) -> None:
        for name, value in fields.items():
            setattr(task.view, name, value)
        task.view.version += 1

    def _show_open_tasks(self) -> None:
        """Search attributes naming the open task, so ops can find who waits for whom."""
        open_tasks = [
            t.view
            for t in self._tasks.values()
            if t.view.status in (TaskStatus.OPEN, TaskStatus.CLAIMED)
        ]
        if open_tasks:
            first = open_tasks[0]
            workflow.upsert_search_attributes(
                [sa.TASK_KIND.value_set(first.kind), sa.TASK_QUEUE.value_set(first.queue)]
            )
        else:
            workflow.upsert_search_attributes(
                [sa.TASK_KIND.value_unset(), sa.TASK_QUEUE.value_unset()]
            )
