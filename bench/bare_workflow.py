"""The baseline of ``bench/workflow_cost.py`` and ``bench/worker_memory.py``: a cart's skeleton.

Standard library and ``temporalio`` only, run in the SDK's default sandbox, so that what it costs
is what any workflow with the same timers and activities costs on this machine.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import activity, workflow


@dataclass
class BareInput:
    abandon_at: datetime  # the same abandonment deadline our cart gets
    step_delays: list[float]  # seconds after abandonment, like the cadence's steps


@activity.defn(name="bare_noop")
async def bare_noop() -> None:
    """Does nothing: stands in for each of our activities."""


@workflow.defn
class BareWorkflow:
    """Sleeps until the abandonment deadline, then a no-op activity per step after a timer."""

    @workflow.run
    async def run(self, input: BareInput) -> int:
        await self._sleep_until(input.abandon_at)
        abandoned_at = workflow.now()
        for delay in input.step_delays:
            await self._sleep_until(abandoned_at + timedelta(seconds=delay))
            await workflow.execute_activity(bare_noop, start_to_close_timeout=timedelta(seconds=30))
        return len(input.step_delays)

    async def _sleep_until(self, when: datetime) -> None:
        remaining = when - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
