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


@dataclass
class BareClaim:
    agent_id: str


@dataclass
class BareCompletion:
    agent_id: str
    outcome: str


class BareRejected(Exception):
    """A validator's refusal (the SDK turns it into an Update failure)."""


@workflow.defn
class BareTaskWorkflow:
    """One human task and nothing else: claim and complete Updates with validators, the
    baseline of ``bench/agent_operations.py``."""

    def __init__(self) -> None:
        self._holder: str | None = None
        self._outcome: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._outcome is not None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._outcome is not None
        return self._outcome

    @workflow.update
    def claim(self, claim: BareClaim) -> str:
        self._holder = claim.agent_id
        return "claimed"

    @claim.validator
    def _validate_claim(self, claim: BareClaim) -> None:
        if self._outcome is not None or self._holder not in (None, claim.agent_id):
            raise BareRejected("held or done")

    @workflow.update
    def complete(self, completion: BareCompletion) -> str:
        self._outcome = completion.outcome
        return "done"

    @complete.validator
    def _validate_complete(self, completion: BareCompletion) -> None:
        if self._outcome is not None or self._holder != completion.agent_id:
            raise BareRejected("not the holder")
