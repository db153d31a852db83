"""The activities human tasks call: names and signatures only (implemented in
``activities.tasks.inbox``; see ``workflows/carts/activities.py`` for why stubs)."""

from temporalio import activity

from workflows.tasks.types import (
    EscalateTaskInput,
    EscalateTaskResult,
    OpenTaskInput,
    OpenTaskResult,
    RemindTaskInput,
    TaskChange,
)


@activity.defn(name="open_task")
async def open_task(input: OpenTaskInput) -> OpenTaskResult:
    """Routes the task to a queue and writes its inbox row."""
    raise NotImplementedError


@activity.defn(name="close_task")
async def close_task(change: TaskChange) -> None:
    """Mirrors an accepted change (claim, release, completion...) on the inbox row."""
    raise NotImplementedError


@activity.defn(name="escalate_task")
async def escalate_task(input: EscalateTaskInput) -> EscalateTaskResult:
    """Raises an overdue task's priority, tells the supervisor, moves it on."""
    raise NotImplementedError


@activity.defn(name="remind_task")
async def remind_task(input: RemindTaskInput) -> None:
    """Reminds whoever holds a task that its deadline is near."""
    raise NotImplementedError
