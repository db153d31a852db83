"""CartRecoveryWorkflow: one durable workflow per cart, ``cart-<retailer>-<cart>``.

While the shopper is on the site it offers help once (on idle, exit intent or confusion). After
the configured inactivity it runs the cadence's follow-up steps in order, and it stops at once
when the shopper buys, opts out, or the cart expires.

Cheap by design: the API stores every cart event in the database and signals only what changes
the course (a nudge trigger, an order, an opt-out, a contact becoming known). Inactivity is an
"updatable timer": the workflow sleeps until the abandonment deadline it knows of, then re-reads
the cart's last activity and sleeps again if the shopper was busy meanwhile. Ten minor edits cost
the same Temporal actions as one.
"""

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import search_attributes as sa
from workflows.cart_types import (
    CartRecoveryInput,
    CartRecoveryResult,
    CartSnapshot,
    CartState,
    Channel,
    NudgeTrigger,
    OfferNudgeInput,
    OptedOut,
    OrderPlaced,
    RefreshCartInput,
    SendStepInput,
    Stage,
    StepOutcome,
    StepRecord,
    StepSpec,
)

with workflow.unsafe.imports_passed_through():
    from activities.cart_store import CartStoreActivities
    from activities.messaging import MessagingActivities

# Reading the database has no side effects: retry it for as long as it takes.
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# A send retries through provider hiccups, then the step is recorded as failed.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=8,
    non_retryable_error_types=["TemplateError", "InvalidRecipient", "UnknownCart"],
)
# A nudge that cannot be pushed to the retailer's webhook is still there for polling.
NUDGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["TemplateError", "UnknownCart"],
)

# Abandonment is judged when the timer fires; activity within this fraction of the inactivity
# threshold counts as already idle, so a burst of edits right after the start costs no extra
# timer (the shopper is declared gone at 27 rather than 30 minutes, by default).
ABANDON_GRACE_FRACTION = 0.1


@workflow.defn
class CartRecoveryWorkflow:
    @workflow.init
    def __init__(self, input: CartRecoveryInput) -> None:
        self._input = input
        self._stage = Stage.ACTIVE
        self._has_contact = input.has_contact
        self._nudge_reason: str | None = None
        self._nudge_offered = False
        self._order: OrderPlaced | None = None
        self._opted_out: OptedOut | None = None
        self._steps: list[StepRecord] = []
        self._next_step: StepSpec | None = None
        self._next_at: datetime | None = None
        self._abandoned_at: datetime | None = None

    # --- signals and queries ------------------------------------------------------------------

    @workflow.signal
    def order_placed(self, order: OrderPlaced) -> None:
        """The shopper bought: stop at once."""
        self._order = order

    @workflow.signal
    def opted_out(self, opt_out: OptedOut) -> None:
        """The shopper asked not to be contacted: stop at once."""
        self._opted_out = opt_out

    @workflow.signal
    def nudge_trigger(self, trigger: NudgeTrigger) -> None:
        """Idle, exit intent or confusion on the site: offer help once, if still active."""
        if self._nudge_reason is None:
            self._nudge_reason = trigger.reason

    @workflow.signal
    def contact_known(self) -> None:
        """An anonymous cart got an email or phone: follow-up steps can go out."""
        self._has_contact = True

    @workflow.query
    def state(self) -> CartState:
        """Stage, steps done, and the next step with its time."""
        return CartState(
            stage=self._stage,
            cadence_version=self._input.cadence.version,
            has_contact=self._has_contact,
            nudge_offered=self._nudge_offered,
            steps=list(self._steps),
            next_step=self._next_step.index if self._next_step else None,
            next_channel=self._next_step.channel if self._next_step else None,
            next_at=self._next_at,
            abandoned_at=self._abandoned_at,
        )

    # --- the journey --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CartRecoveryInput) -> CartRecoveryResult:
        cadence = input.cadence
        self._expires_at = workflow.now() + timedelta(seconds=cadence.expire_after_seconds)
        self._nudge_step = next((s for s in cadence.steps if s.channel == Channel.ONSITE), None)

        if not await self._wait_for_abandonment(input.last_activity_at):
            return await self._finish()

        for step in cadence.steps:
            if step.channel == Channel.ONSITE:
                continue
            assert self._abandoned_at is not None
            due = self._abandoned_at + timedelta(seconds=step.delay_seconds)
            self._show_next(step, due)
            if not await self._sleep_until(due, f"step {step.index}: {step.channel}"):
                return await self._finish()
            if not self._has_contact:
                self._show_next(step, None, "waiting for the shopper's contact")
                if not await self._sleep_until(
                    self._expires_at, "waiting for a contact", lambda: self._has_contact
                ):
                    return await self._finish()
            if not await self._run_step(step):
                return await self._finish()

        self._show_next(None, self._expires_at, "cadence done; watching for a purchase")
        await self._sleep_until(self._expires_at, "until the cart expires")
        return await self._finish()

    async def _wait_for_abandonment(self, last_activity_at: datetime) -> bool:
        """Sleeps until the shopper has been idle long enough; False if the journey ended."""
        abandon_after = timedelta(seconds=self._input.cadence.abandon_after_seconds)
        grace = abandon_after * ABANDON_GRACE_FRACTION
        while True:
            deadline = min(last_activity_at + abandon_after, self._expires_at)
            self._show_next(None, deadline, "abandonment check")
            await self._sleep_until(deadline, "abandonment check", self._nudge_due)
            if self._stopped():
                return False
            if self._nudge_due():
                await self._offer_nudge()
                continue
            if workflow.now() >= self._expires_at:
                return False
            snapshot = await self._refresh(workflow.now() - abandon_after + grace)
            if self._stopped():
                return False
            if snapshot.abandoned_at is not None:
                self._abandoned_at = snapshot.abandoned_at
                self._has_contact = self._has_contact or snapshot.has_contact
                self._set_stage(Stage.ABANDONED)
                return True
            last_activity_at = snapshot.last_activity_at

    async def _run_step(self, step: StepSpec) -> bool:
        """Sends one step, postponing it out of quiet hours. False if the journey ended."""
        while True:
            try:
                result = await workflow.execute_activity_method(
                    MessagingActivities.send_step,
                    SendStepInput(
                        workflow_id=workflow.info().workflow_id,
                        retailer_id=self._input.retailer_id,
                        cart_id=self._input.cart_id,
                        step=step,
                        guards=self._input.cadence.guards,
                        at=workflow.now(),
                    ),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=SEND_RETRY,
                    summary=f"step {step.index}: {step.channel}",
                )
            except ActivityError as err:
                self._record(step, StepOutcome.FAILED, _failure_reason(err))
                return not self._stopped()

            if result.outcome == StepOutcome.POSTPONED and result.retry_at is not None:
                if result.retry_at >= self._expires_at:
                    self._record(step, StepOutcome.SKIPPED, f"{result.reason}; cart expires first")
                    return True
                self._show_next(step, result.retry_at, f"postponed: {result.reason}")
                if not await self._sleep_until(result.retry_at, f"postponed: {result.reason}"):
                    return False
                continue

            self._record(step, result.outcome, result.reason, result.message_id)
            if result.outcome == StepOutcome.STOPPED:
                # The database saw the purchase or opt-out before its signal reached us.
                if result.reason == "ordered" and self._order is None:
                    self._order = OrderPlaced(order_id="")
                elif self._opted_out is None and self._order is None:
                    self._opted_out = OptedOut(reason=result.reason or "opted_out")
                return False
            if result.outcome == StepOutcome.SENT and self._stage == Stage.ABANDONED:
                self._set_stage(Stage.CONTACTING)
            return not self._stopped()

    async def _offer_nudge(self) -> None:
        assert self._nudge_step is not None and self._nudge_reason is not None
        self._nudge_offered = True
        try:
            result = await workflow.execute_activity_method(
                MessagingActivities.offer_nudge,
                OfferNudgeInput(
                    workflow_id=workflow.info().workflow_id,
                    retailer_id=self._input.retailer_id,
                    cart_id=self._input.cart_id,
                    step=self._nudge_step,
                    reason=self._nudge_reason,
                    at=workflow.now(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NUDGE_RETRY,
                summary=f"on-site nudge ({self._nudge_reason})",
            )
            self._record(self._nudge_step, StepOutcome.SENT, self._nudge_reason, result.message_id)
        except ActivityError as err:
            self._record(self._nudge_step, StepOutcome.FAILED, _failure_reason(err))

    async def _refresh(self, abandon_if_idle_since: datetime) -> CartSnapshot:
        snapshot: CartSnapshot = await workflow.execute_activity_method(
            CartStoreActivities.refresh_cart,
            RefreshCartInput(
                retailer_id=self._input.retailer_id,
                cart_id=self._input.cart_id,
                abandon_if_idle_since=abandon_if_idle_since,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DATABASE_RETRY,
            summary="re-read the cart's activity",
        )
        if snapshot.status == "ordered" and self._order is None:
            self._order = OrderPlaced(order_id="")
        elif snapshot.status == "opted_out" and self._opted_out is None:
            self._opted_out = OptedOut()
        return snapshot

    # --- helpers ------------------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._order is not None or self._opted_out is not None

    def _nudge_due(self) -> bool:
        return (
            self._nudge_reason is not None
            and not self._nudge_offered
            and self._nudge_step is not None
            and self._stage == Stage.ACTIVE
        )

    async def _sleep_until(
        self, when: datetime, summary: str, wake: Callable[[], bool] | None = None
    ) -> bool:
        """Sleeps until ``when``, or until a stop (False) or ``wake()`` (True)."""

        def done() -> bool:
            return self._stopped() or (wake is not None and wake())

        remaining = when - workflow.now()
        if remaining > timedelta(0) and not done():
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(done, timeout=remaining, timeout_summary=summary)
        return not self._stopped()

    def _set_stage(self, stage: str) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([sa.STAGE.value_set(stage)])

    def _record(
        self, step: StepSpec, outcome: str, reason: str | None, message_id: int | None = None
    ) -> None:
        self._steps.append(
            StepRecord(step.index, step.channel, outcome, reason, workflow.now(), message_id)
        )

    def _show_next(self, step: StepSpec | None, at: datetime | None, note: str = "") -> None:
        """Keeps the query and the Temporal UI's current details in step with the journey."""
        self._next_step, self._next_at = step, at
        what = f"step {step.index} ({step.channel})" if step else note
        when = f" at {at.isoformat(timespec='minutes')}" if at else ""
        extra = f" — {note}" if step and note else ""
        done = ", ".join(f"{r.index}:{r.channel}={r.outcome}" for r in self._steps) or "none"
        workflow.set_current_details(
            f"**Stage:** {self._stage}  \n**Next:** {what}{when}{extra}  \n**Done:** {done}"
        )

    async def _finish(self) -> CartRecoveryResult:
        if self._order is not None:
            stage = Stage.RECOVERED if self._abandoned_at is not None else Stage.PURCHASED
        elif self._opted_out is not None:
            stage = Stage.OPTED_OUT
        else:
            stage = Stage.EXPIRED
        self._set_stage(stage)
        self._show_next(None, None, "finished")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CartRecoveryResult(stage=stage, steps=list(self._steps))


def _failure_reason(err: ActivityError) -> str:
    cause = err.cause
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
