"""CartRecoveryWorkflow: one durable workflow per cart, ``cart-<retailer>-<cart>``.

While the shopper is on the site it offers help once (on idle, exit intent or confusion). After
the configured inactivity it runs the cadence's follow-up steps in order, and it stops at once
when the shopper buys, opts out, or the cart expires.

Cheap by design (Temporal Cloud bills every start, signal, timer and activity): the API stores
every cart event in the database and signals only what changes the course (a nudge trigger, an
order, an opt-out, a contact becoming known). Inactivity is an "updatable timer" folded into the
first follow-up: the workflow sleeps until that step would be due had the shopper stayed idle
since the last activity it knows of (last activity + ``abandon_after`` + the step's delay); the
step's send activity re-reads the cart, marks it abandoned (backdated to last activity +
``abandon_after``) and sends, or answers "not due until X" if the shopper was busy since, and
the workflow sleeps again. Ten minor edits cost the same Temporal actions as one. After its last
step the journey ends: a later purchase is credited by the API, a later callback request starts
a run of its own (``CartRecoveryInput.callback_only``). A whole cadence costs less than 2 + 2
Temporal actions per executed step (counted in ``CartRecoveryWorkflow``).

What the fold costs: the cart's row says ``active`` until the first follow-up is due, unless
the worker's sweep (``winback.carts.abandonment.mark_idle_carts_abandoned``, every minute, SQL)
marks it abandoned first, with the same backdated time; the on-site nudge is offered only while
the shopper is there (``_nudge_due`` and the activity's ``unless_idle_since``).
"""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import search_attributes as sa
from workflows.carts import activities as cart_activities
from workflows.carts.types import (
    SEND_ATTEMPTS,
    CallbackRequested,
    CartRecoveryInput,
    CartRecoveryResult,
    CartSnapshot,
    CartState,
    NudgeTrigger,
    OfferNudgeInput,
    OptedOut,
    OrderPlaced,
    RecordCallInput,
    RefreshCartInput,
    SendStepInput,
    SendStepResult,
    StepRecord,
    StepSpec,
)
from workflows.errors import ErrorType
from workflows.retries import DATABASE_RETRY, LOCAL_DATABASE_TIMEOUT
from workflows.tasks.human_tasks import HumanTaskWorkflow
from workflows.tasks.types import TaskChange, TaskCompletion, TaskSpec
from workflows.vocabulary import CallOutcome, Channel, Stage, StepOutcome, TaskKind

# A send retries through provider hiccups, then the step is recorded as failed.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=SEND_ATTEMPTS,
    non_retryable_error_types=[ErrorType.TEMPLATE_ERROR, ErrorType.UNKNOWN_CART],
)
SEND_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A nudge that cannot be pushed to the retailer's webhook is still there for polling.
NUDGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ErrorType.TEMPLATE_ERROR, ErrorType.UNKNOWN_CART],
)

# Abandonment is judged when the timer fires; activity within this fraction of the inactivity
# threshold counts as already idle, so a burst of edits right after the start costs no extra
# timer (the shopper is declared gone at 27 rather than 30 minutes, by default).
ABANDON_GRACE_FRACTION = 0.1
CALL_RETRY_AFTER = timedelta(days=1)  # an unanswered call is tried once more, a day later
DEFAULT_CALL_SLA = timedelta(hours=4)
DEFAULT_CALLBACK_SLA = timedelta(minutes=15)
CALLBACK_OUTCOMES = [
    CallOutcome.REACHED_PURCHASED,
    CallOutcome.REACHED_NOT_INTERESTED,
    CallOutcome.VOICEMAIL,
    CallOutcome.NO_ANSWER,
    CallOutcome.WRONG_NUMBER,
]


@workflow.defn(name="CartRecoveryV4")
class CartRecoveryWorkflow(HumanTaskWorkflow):
    """A cart's journey, registered as ``CartRecoveryV4``. Carts started before run on as the
    type they were started with: ``CartRecoveryWorkflowV3`` (``CartRecoveryV3``),
    ``CartRecoveryWorkflowV2`` (``CartRecovery``) and ``CartRecoveryWorkflowV1``
    (``CartRecoveryWorkflow``), see there.

    Its actions, whole default cadence: start, the ``idle`` signal, the nudge activity, then a
    timer and a send activity per executed step (the first step's timer and activity also
    settle the abandonment): 3 + 2 x 3 = 9 for nudge, email, SMS, email, where the issue's
    budget is 2 + 2 x 4 = 10. A cart bought before abandonment: start, the first step's timer,
    the order signal (3). Three actions fewer than ``CartRecovery``: no re-read of the cart at
    the abandonment deadline (``refresh_cart``) and no timer of its own for that deadline (the
    first step's timer and send do both), and no last timer keeping a finished cadence open
    until the cart expired (so that a late purchase or callback request still found it). The
    price of the first two: the cart row learns of the abandonment from the worker's sweep, not
    from the workflow (see the module docstring); of the third: a callback requested after the
    end needs a start of its own (a late purchase is credited by the API anyway).

    It never upserts ``WinbackStage``: each upsert is a billed action and nothing reads it. The
    carts table keeps the stage for the dashboard and the reports; the ``state`` query and the
    current details show it in the Temporal UI.

    An agent's task (a callback or an ``agent_call`` step) is kept by local activities: the
    inbox row is written by ``open_task`` within the workflow task that opens the task, and a
    completed call is closed by ``record_call`` with the task's final state, the row and the
    call's record in one transaction, within the workflow task that accepts the completion
    Update. ``CartRecoveryV3`` ran ``open_task``, then ``close_task`` and ``record_call``, as
    activities, each with a workflow task of its own: per completed call, two actions instead
    of one (all local activities of a workflow task are one action) and three workflow tasks
    instead of one, which on a 2-core box was half the Temporal server's CPU and a third of the
    worker's per agent task (bench/README.md, "Agent operations"). The completion's answer now
    waits for that write (tens of ms); a task cancelled because the cart ended is still closed
    by ``close_task``.
    """

    _upserts_stage = False
    # Issue 11, second round: no abandonment re-read, no parking timer after the last step.
    _folds_abandonment = True
    # Issue 11, agent operations: tasks opened, and completed calls closed and recorded, by
    # local activities.
    _books_tasks_locally = True

    @workflow.init
    def __init__(self, input: CartRecoveryInput) -> None:
        self._init_tasks()
        self._input = input
        self._finished = False
        self._declined = False
        self._stage: str = Stage.ACTIVE
        self._has_contact = input.has_contact
        self._nudge_reason: str | None = None
        self._nudge_offered = False
        self._order: OrderPlaced | None = None
        self._opted_out: OptedOut | None = None
        self._steps: list[StepRecord] = []
        self._next_step: StepSpec | None = None
        self._next_at: datetime | None = None
        self._abandoned_at: datetime | None = None
        self._last_outcome: str | None = None
        self._expires_at = workflow.now() + timedelta(seconds=input.cadence.expire_after_seconds)
        self._abandon_after = timedelta(seconds=input.cadence.abandon_after_seconds)
        self._grace = self._abandon_after * ABANDON_GRACE_FRACTION
        # When the shopper is idle long enough, going by the last activity the workflow knows of.
        self._idle_at = input.last_activity_at + self._abandon_after
        self._callbacks_requested = 0
        self._nudge_step = next(
            (s for s in input.cadence.steps if s.channel == Channel.ONSITE), None
        )

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
    async def callback_requested(self, _: CallbackRequested) -> None:
        """The shopper asked to be called back from the on-site nudge: an agent task, now."""
        self._callbacks_requested += 1
        step = self._nudge_step or StepSpec(index=0, channel=Channel.ONSITE)
        sla = timedelta(seconds=step.sla_seconds) if step.sla_seconds else DEFAULT_CALLBACK_SLA
        outcome = await self._agent_call(step, TaskKind.CALLBACK, "Call back", sla, attempt=1)
        # "Not interested" on the callback is the same answer as on an agent_call step: the
        # journey ends (histories from before this change went on with the cadence).
        # No V3 or later history lacks it: no patch marker (its upsert is server work).
        if outcome == CallOutcome.REACHED_NOT_INTERESTED and (
            self._folds_abandonment or workflow.patched("callback-not-interested-ends-journey")
        ):
            self._declined = True

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

    @property
    def retailer_id(self) -> str:
        return self._input.retailer_id

    @workflow.run
    async def run(self, input: CartRecoveryInput) -> CartRecoveryResult:
        if input.callback_only:
            return await self._late_callback()
        cadence = input.cadence

        if not self._folds_abandonment and not await self._wait_for_abandonment(
            input.last_activity_at
        ):
            return await self._finish()

        for step in cadence.steps:
            if step.channel == Channel.ONSITE:
                continue
            delay = timedelta(seconds=step.delay_seconds)
            if self._abandoned_at is None:
                # The step's activity judges the abandonment (see ``_run_step``); meanwhile
                # the shopper may still be on the site, so the nudge stays on offer.
                due = min(self._idle_at + delay, self._expires_at)
                self._show_next(step, due, "due if the shopper stays idle")
                await self._sleep_through_nudges(due, f"step {step.index}: {step.channel}")
                if self._stopped() or workflow.now() >= self._expires_at:
                    return await self._finish()
            else:
                due = self._abandoned_at + delay
                self._show_next(step, due)
                if not await self._sleep_until(due, f"step {step.index}: {step.channel}"):
                    return await self._finish()
            if not self._has_contact:
                self._show_next(step, None, "waiting for the shopper's contact")
                if not await self._sleep_until(
                    self._expires_at, "waiting for a contact", lambda: self._has_contact
                ):
                    return await self._finish()
                if self._folds_abandonment and not self._has_contact:
                    return await self._finish()  # expired without a contact: nothing to send
            done = (
                await self._run_call_step(step)
                if step.channel == Channel.AGENT_CALL
                else await self._run_step(step)
            )
            if not done:
                return await self._finish()

        if self._folds_abandonment:
            if self._abandoned_at is None and self._nudge_step is not None:
                # No follow-up steps: the nudge window is all there is.
                await self._sleep_through_nudges(min(self._idle_at, self._expires_at))
            # A callback task the shopper asked for is seen through before the end.
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or self._stopped()
            )
            return await self._finish(cadence_done=True)
        self._show_next(None, self._expires_at, "cadence done; watching for a purchase")
        await self._sleep_until(self._expires_at, "until the cart expires")
        return await self._finish()

    async def _late_callback(self) -> CartRecoveryResult:
        """A run of its own for a callback requested after the journey ended: the API starts it
        with the ``callback_requested`` signal, whose handler does the work."""
        self._show_next(None, None, "a callback requested after the journey ended")
        await workflow.wait_condition(
            lambda: self._callbacks_requested > 0 and workflow.all_handlers_finished()
        )
        return await self._finish(cadence_done=True)

    async def _wait_for_abandonment(self, last_activity_at: datetime) -> bool:
        """Sleeps until the shopper has been idle long enough; False if the journey ended."""
        abandon_after = timedelta(seconds=self._input.cadence.abandon_after_seconds)
        grace = abandon_after * ABANDON_GRACE_FRACTION
        while True:
            deadline = min(last_activity_at + abandon_after, self._expires_at)
            self._show_next(None, deadline, "abandonment check")
            await self._sleep_through_nudges(deadline)
            if self._stopped():
                return False
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

    async def _sleep_through_nudges(
        self, until: datetime, summary: str = "abandonment check"
    ) -> None:
        """Sleeps until ``until`` on one timer, offering the nudge if it falls due meanwhile."""
        remaining = until - workflow.now()
        timer = (
            asyncio.ensure_future(workflow.sleep(remaining, summary=summary))
            if remaining > timedelta(0)
            else None
        )
        try:
            while True:
                await workflow.wait_condition(
                    lambda: timer is None or timer.done() or self._nudge_due() or self._stopped()
                )
                if self._nudge_due() and not self._stopped():
                    await self._offer_nudge()
                    continue
                return
        finally:
            if timer is not None and not timer.done():
                timer.cancel()

    async def _run_step(
        self, step: StepSpec, key_suffix: str = "", check_only: bool = False
    ) -> bool:
        """Sends one step (or, ``check_only``, checks its guards), postponing it out of quiet
        hours. False if the journey ended."""
        activity: Any = cart_activities.check_step if check_only else cart_activities.send_step
        while True:
            judge = self._folds_abandonment and self._abandoned_at is None
            try:
                result = await workflow.execute_activity(
                    activity,
                    SendStepInput(
                        workflow_id=workflow.info().workflow_id,
                        retailer_id=self._input.retailer_id,
                        cart_id=self._input.cart_id,
                        step=step,
                        guards=self._input.cadence.guards,
                        at=workflow.now(),
                        key_suffix=key_suffix,
                        abandon_after_seconds=(
                            self._input.cadence.abandon_after_seconds if judge else None
                        ),
                        abandon_grace_seconds=int(self._grace.total_seconds()) if judge else 0,
                    ),
                    start_to_close_timeout=timedelta(minutes=1),
                    # The send heartbeats every second: a killed worker's attempt is retried
                    # after this, not after the whole minute (timeouts are not part of the
                    # replayed commands, so running carts pick this up safely).
                    heartbeat_timeout=SEND_HEARTBEAT_TIMEOUT,
                    retry_policy=SEND_RETRY,
                    summary=f"step {step.index}: {step.channel}{key_suffix}",
                )
            except ActivityError as err:
                self._record(step, StepOutcome.FAILED, _failure_reason(err))
                self._last_outcome = StepOutcome.FAILED
                return not self._stopped()

            if result.abandoned_at is not None and self._abandoned_at is None:
                self._abandoned_at = result.abandoned_at
                self._set_stage(Stage.ABANDONED)
            if result.outcome == StepOutcome.NOT_DUE and result.retry_at is not None:
                # The shopper was active after the last activity we knew of.
                if result.retry_at >= self._expires_at:
                    return False  # the cart expires first
                self._show_next(step, result.retry_at, f"not due yet: {result.reason}")
                await self._sleep_through_nudges(result.retry_at, f"step {step.index}: not due")
                if self._stopped():
                    return False
                continue

            if result.outcome == StepOutcome.POSTPONED and result.retry_at is not None:
                if result.retry_at >= self._expires_at:
                    self._record(step, StepOutcome.SKIPPED, f"{result.reason}; cart expires first")
                    return True
                self._show_next(step, result.retry_at, f"postponed: {result.reason}")
                if not await self._sleep_until(result.retry_at, f"postponed: {result.reason}"):
                    return False
                continue

            self._last_outcome = result.outcome
            if result.outcome != StepOutcome.READY:
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

    async def _run_call_step(self, step: StepSpec) -> bool:
        """An agent calls the shopper; an unanswered call is retried once the next day (in
        calling hours), then an SMS goes instead if the shopper agreed to texts."""
        sla = timedelta(seconds=step.sla_seconds) if step.sla_seconds else DEFAULT_CALL_SLA
        for attempt in (1, 2):
            if not await self._run_step(step, key_suffix=f"-call-{attempt}", check_only=True):
                return False
            if self._last_outcome != StepOutcome.READY:
                return True  # skipped (no phone, no consent, ...) or failed: recorded
            outcome = await self._agent_call(step, TaskKind.CALL_SHOPPER, "Call", sla, attempt)
            if outcome is None:
                return False  # bought or opted out while the task waited: cancelled
            if outcome == CallOutcome.REACHED_NOT_INTERESTED:
                self._declined = True
                return False
            if outcome not in CallOutcome.RETRY:
                return True
            if attempt == 1:
                retry_at = workflow.now() + CALL_RETRY_AFTER
                self._show_next(step, retry_at, "calling again after no answer")
                if not await self._sleep_until(retry_at, f"step {step.index}: call again"):
                    return False
        fallback = StepSpec(index=step.index, channel=Channel.SMS, template="cart_sms")
        return await self._run_step(fallback, key_suffix="-sms-fallback")

    async def _agent_call(
        self, step: StepSpec, kind: str, verb: str, sla: timedelta, attempt: int
    ) -> str | None:
        """Opens a call task with the cart attached and waits for the agent's outcome."""
        value = f"{self._input.cart_value:.2f}"
        spec = TaskSpec(
            kind=kind,
            title=f"{verb} the shopper of cart {self._input.cart_id} ({value}), attempt {attempt}",
            allowed_outcomes=list(CALLBACK_OUTCOMES),
            sla_seconds=int(sla.total_seconds()),
            priority=2 if kind == TaskKind.CALLBACK else 1,
            queue=step.queue,
            skills=list(step.skills),
            cart_id=self._input.cart_id,
            remind_before_seconds=_reminder(step, sla),
        )
        self._show_next(step, workflow.now() + sla, f"waiting for an agent: {spec.title}")
        recorded: SendStepResult | None = None

        async def close_and_record(change: TaskChange, completion: TaskCompletion) -> None:
            # One local activity writes the task's inbox row and the call, in the workflow task
            # that accepted the completion (see the class docstring).
            nonlocal recorded
            recorded = await workflow.execute_local_activity(
                cart_activities.record_call,
                self._call_record(step, kind, completion, close=change),
                start_to_close_timeout=LOCAL_DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
                summary=f"close task, record call: {completion.outcome}",
            )

        completion = await self.run_task(
            spec,
            stop=lambda: self._stopped() or self._finished,
            until=self._expires_at,
            open_locally=self._books_tasks_locally,
            close_completed=close_and_record if self._books_tasks_locally else None,
        )
        if completion is None:
            self._record(step, StepOutcome.STOPPED, f"{kind} task cancelled")
            return None
        result = (
            recorded
            if recorded is not None
            else await workflow.execute_activity(
                cart_activities.record_call,
                self._call_record(step, kind, completion),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DATABASE_RETRY,
                summary=f"record call: {completion.outcome}",
            )
        )
        self._record(step, StepOutcome.SENT, f"{kind}: {completion.outcome}", result.message_id)
        if self._stage == Stage.ABANDONED:
            self._set_stage(Stage.CONTACTING)
        return completion.outcome

    def _call_record(
        self,
        step: StepSpec,
        kind: str,
        completion: TaskCompletion,
        close: TaskChange | None = None,
    ) -> RecordCallInput:
        return RecordCallInput(
            workflow_id=workflow.info().workflow_id,
            retailer_id=self._input.retailer_id,
            cart_id=self._input.cart_id,
            task_id=completion.task_id,
            step_index=step.index if kind == TaskKind.CALL_SHOPPER else None,
            agent_id=completion.agent_id,
            outcome=completion.outcome,
            notes=completion.notes,
            at=workflow.now(),
            close=close,
        )

    async def _offer_nudge(self) -> None:
        assert self._nudge_step is not None and self._nudge_reason is not None
        self._nudge_offered = True
        try:
            result = await workflow.execute_activity(
                cart_activities.offer_nudge,
                OfferNudgeInput(
                    workflow_id=workflow.info().workflow_id,
                    retailer_id=self._input.retailer_id,
                    cart_id=self._input.cart_id,
                    step=self._nudge_step,
                    reason=self._nudge_reason,
                    at=workflow.now(),
                    # The workflow cannot tell from here whether the shopper is still there
                    # (minor edits never reach it): the activity can.
                    unless_idle_since=(
                        workflow.now() - self._abandon_after + self._grace
                        if self._folds_abandonment
                        else None
                    ),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NUDGE_RETRY,
                summary=f"on-site nudge ({self._nudge_reason})",
            )
            if result.message_id is None:
                self._record(self._nudge_step, StepOutcome.SKIPPED, "the shopper had left")
            else:
                self._record(
                    self._nudge_step, StepOutcome.SENT, self._nudge_reason, result.message_id
                )
        except ActivityError as err:
            self._record(self._nudge_step, StepOutcome.FAILED, _failure_reason(err))

    async def _refresh(self, abandon_if_idle_since: datetime) -> CartSnapshot:
        snapshot: CartSnapshot = await workflow.execute_activity(
            cart_activities.refresh_cart,
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
        """Bought, opted out, or told an agent they are not interested."""
        return self._order is not None or self._opted_out is not None or self._declined

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
        if self._upserts_stage:
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

    async def _finish(self, cadence_done: bool = False) -> CartRecoveryResult:
        # Stopped or expired: any callback task still open is cancelled. At the end of the
        # cadence it is not: one the shopper asks for in this very task (its signal can still
        # arrive) is carried out before the workflow closes.
        self._finished = not cadence_done
        if self._order is not None:
            stage = Stage.RECOVERED if self._abandoned_at is not None else Stage.PURCHASED
        elif self._opted_out is not None:
            stage = Stage.OPTED_OUT
        elif self._declined:
            stage = Stage.DECLINED
        elif cadence_done:
            stage = Stage.COMPLETED
        else:
            stage = Stage.EXPIRED
        self._set_stage(stage)
        self._show_next(None, None, "finished")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CartRecoveryResult(stage=stage, steps=list(self._steps))


@workflow.defn(name="CartRecoveryV3")
class CartRecoveryWorkflowV3(CartRecoveryWorkflow):
    """Carts started between issue 11's second round and its agent-operations round, under the
    type they were started with (``CartRecoveryV3``): the same journey, with an agent's task
    opened by the ``open_task`` activity and a completed call closed by the ``close_task``
    activity and then recorded by a ``record_call`` activity, as their histories say.

    A new type again rather than ``workflow.patched``: the patch would add a marker and a
    ``TemporalChangeVersion`` upsert to the very workflow task this change makes cheaper, on
    every completed call for as long as the branch stays. It can go once no ``CartRecoveryV3``
    workflow is open (``expire_after``, 7 days by default).
    """

    _books_tasks_locally = False

    @workflow.init
    def __init__(self, input: CartRecoveryInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: CartRecoveryInput) -> CartRecoveryResult:
        return await super().run(input)


@workflow.defn(name="CartRecovery")
class CartRecoveryWorkflowV2(CartRecoveryWorkflowV3):
    """Carts started between the two rounds of issue 11, under the type they were started with
    (``CartRecovery``): the same journey with a ``refresh_cart`` activity at the abandonment
    deadline and a last timer until the cart expires, as their histories say.

    A new type again rather than ``workflow.patched`` (see ``CartRecoveryWorkflowV1`` for why):
    the patch's ``TemporalChangeVersion`` upsert would have cost a new cart one of the two
    actions saved. It can go once no ``CartRecovery`` workflow is open (``expire_after``, 7 days
    by default).
    """

    _folds_abandonment = False

    @workflow.init
    def __init__(self, input: CartRecoveryInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: CartRecoveryInput) -> CartRecoveryResult:
        return await super().run(input)


@workflow.defn(name="CartRecoveryWorkflow")
class CartRecoveryWorkflowV1(CartRecoveryWorkflowV2):
    """Carts started before issue 11, under their type's old name: the same journey, and it
    still upserts ``WinbackStage`` at every stage, as their histories say.

    Why a second type rather than ``workflow.patched``: a patch marker makes the SDK upsert
    ``TemporalChangeVersion`` in the same task, one billed action per cart, which would have
    cost a bought cart exactly the action the change saves. New carts get the newest type from
    ``CartRecoveryWorkflow.run`` (what the API starts); nothing starts this one any more. It
    can be removed once no workflow of type ``CartRecoveryWorkflow`` is open (carts expire
    after ``expire_after``, 7 days by default). Deploy workers before the API, so that a new
    ``CartRecovery`` start finds a worker that knows it.
    """

    _upserts_stage = True

    @workflow.init
    def __init__(self, input: CartRecoveryInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: CartRecoveryInput) -> CartRecoveryResult:
        return await super().run(input)


def _reminder(step: StepSpec, sla: timedelta) -> int | None:
    """Seconds before the due time to remind the task's holder (None: no reminder)."""
    if step.remind_before_seconds is not None:
        return step.remind_before_seconds or None
    return int(sla.total_seconds() // 4) or None


def _failure_reason(err: ActivityError) -> str:
    cause = err.cause
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
