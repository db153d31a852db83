"""Waiting for a workflow on the time-skipping server without losing it to the clock."""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle


async def first_task_done(handle: WorkflowHandle[Any, Any]) -> None:
    """Returns once the worker has completed the workflow's first task.

    The time-skipping server skips time whenever the client lets it, even while a worker is
    still busy with a workflow task. A new worker's first task is slow (the sandbox imports the
    workflow's modules), so a test that skips time at once can see that task time out, and
    with no worker holding the clock the server then skips to the execution timeout. Waiting
    here first keeps the clock still until the workflow is running."""
    async with asyncio.timeout(30):
        while True:
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    return
            await asyncio.sleep(0.02)


def to_the_minute(value: timedelta) -> timedelta:
    """Workflow times, as far as a test can pin them down.

    A timer starts when the worker completes the task that set it, so on a busy machine each
    firing comes a few hundred milliseconds after its due time; minutes are what the journey
    is planned in."""
    return timedelta(minutes=round(value.total_seconds() / 60))
