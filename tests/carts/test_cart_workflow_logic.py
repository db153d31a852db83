"""CartRecoveryWorkflow's decisions alone: its activities are fakes registered under the real
activity names, so no database, no API and no provider is involved.

The fakes answer as the database would and record what the workflow asked and at what workflow
time, so the tests read as the journey: which step, when after abandonment, and when it stops.
They run on the shared time-skipping server; every time is taken from its clock.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.fake_inbox import FakeTaskInbox
from tests.support.started_workflows import StartedWorkflows
from tests.support.workflows import to_the_minute
from workflows.carts.cart_recovery import CartRecoveryWorkflow
from workflows.carts.types import (
    CadenceSpec,
    CartRecoveryInput,
    CartRecoveryResult,
    CartSnapshot,
    GuardSpec,
    NudgeTrigger,
    OfferNudgeInput,
    OfferNudgeResult,
    OrderPlaced,
    RecordCallInput,
    RefreshCartInput,
    SendStepInput,
    SendStepResult,
    StepSpec,
)
from workflows.tasks.types import OpenTaskInput, TaskClaim, TaskCompletion
from workflows.vocabulary import StepOutcome

ABANDON_AFTER = timedelta(minutes=30)
EXPIRE_AFTER = timedelta(days=7)
# The brief's default journey (winback.carts.cadence.default_cadence), as the workflow gets it.
DEFAULT_STEPS = [
    StepSpec(0, "onsite", template="onsite_help"),
    StepSpec(1, "email", delay_seconds=3600, template="cart_reminder"),
    StepSpec(2, "sms", delay_seconds=86400, template="cart_sms", max_cart_value=200),
    StepSpec(3, "agent_call", delay_seconds=86400, min_cart_value=200, sla_seconds=4 * 3600),
    StepSpec(4, "email", delay_seconds=3 * 86400, template="cart_last_chance"),
]


@dataclass
class Sent:
    index: int
    channel: str
    at: datetime
    key_suffix: str = ""


@dataclass
class FakeCartActivities:
    """The cart's activities, answering like a database holding one active cart.

    ``answers`` scripts the send results of a step index, one per call (then ``SENT``);
    a step the cadence's value conditions exclude is skipped as the real guard would. A step
    sent before the workflow knows the abandonment is judged as ``winback.carts.abandonment``
    does, from ``last_activity_at`` (the start, unless a test moves it: the shopper was busy)."""

    cart_value: float = 120.0
    has_contact: bool = True
    answers: dict[int, list[SendStepResult]] = field(default_factory=dict)
    abandoned_at: datetime | None = None
    last_activity_at: datetime | None = None
    refreshes: list[datetime] = field(default_factory=list)
    judged: list[datetime] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    checked: list[Sent] = field(default_factory=list)
    nudges: list[str] = field(default_factory=list)
    inbox: FakeTaskInbox = field(default_factory=FakeTaskInbox)
    calls: list[RecordCallInput] = field(default_factory=list)

    @activity.defn(name="refresh_cart")
    async def refresh_cart(self, input: RefreshCartInput) -> CartSnapshot:
        self.refreshes.append(input.at)
        if self.abandoned_at is None:
            self.abandoned_at = input.at  # nobody touched the cart since it started
        return CartSnapshot(
            status="abandoned",
            last_activity_at=input.abandon_if_idle_since,
            has_contact=self.has_contact,
            value=self.cart_value,
            abandoned_at=self.abandoned_at,
        )

    def _verdict(self, input: SendStepInput) -> SendStepResult:
        step = input.step
        scripted = self.answers.get(step.index)
        if scripted:
            return scripted.pop(0)
        if step.min_cart_value is not None and self.cart_value < step.min_cart_value:
            return SendStepResult(StepOutcome.SKIPPED, "below the minimum")
        if step.max_cart_value is not None and self.cart_value >= step.max_cart_value:
            return SendStepResult(StepOutcome.SKIPPED, "not below the maximum")
        return SendStepResult(StepOutcome.SENT, message_id=len(self.sent) + 1)

    def _not_due(self, input: SendStepInput) -> SendStepResult | None:
        """The abandonment, when the workflow asks for it: None if the step is due now."""
        if input.abandon_after_seconds is None:
            return None
        self.judged.append(input.at)
        assert self.last_activity_at is not None
        grace = timedelta(seconds=input.abandon_grace_seconds)
        delay = timedelta(seconds=input.step.delay_seconds)
        if self.abandoned_at is None:
            idle_at = self.last_activity_at + timedelta(seconds=input.abandon_after_seconds)
            if idle_at - grace > input.at:
                return SendStepResult(StepOutcome.NOT_DUE, "busy", retry_at=idle_at + delay)
            self.abandoned_at = min(idle_at, input.at)
        due = self.abandoned_at + delay
        if due - grace > input.at:
            return SendStepResult(
                StepOutcome.NOT_DUE, "later", retry_at=due, abandoned_at=self.abandoned_at
            )
        return None

    @activity.defn(name="send_step")
    async def send_step(self, input: SendStepInput) -> SendStepResult:
        not_due = self._not_due(input)
        if not_due is not None:
            return not_due
        verdict = self._verdict(input)
        if verdict.outcome == StepOutcome.SENT:
            self.sent.append(Sent(input.step.index, input.step.channel, input.at, input.key_suffix))
        verdict.abandoned_at = self.abandoned_at if input.abandon_after_seconds else None
        return verdict

    @activity.defn(name="check_step")
    async def check_step(self, input: SendStepInput) -> SendStepResult:
        not_due = self._not_due(input)
        if not_due is not None:
            return not_due
        self.checked.append(Sent(input.step.index, input.step.channel, input.at, input.key_suffix))
        verdict = self._verdict(input)
        if verdict.outcome == "sent":
            verdict = SendStepResult(StepOutcome.READY)
        verdict.abandoned_at = self.abandoned_at if input.abandon_after_seconds else None
        return verdict

    @activity.defn(name="offer_nudge")
    async def offer_nudge(self, input: OfferNudgeInput) -> OfferNudgeResult:
        self.nudges.append(input.reason)
        return OfferNudgeResult(message_id=100 + len(self.nudges))

    @activity.defn(name="record_call")
    async def record_call(self, input: RecordCallInput) -> SendStepResult:
        self.calls.append(input)
        return SendStepResult(StepOutcome.SENT, message_id=200 + len(self.calls))

    def all(self) -> list[object]:
        return [
            self.refresh_cart,
            self.send_step,
            self.check_step,
            self.offer_nudge,
            self.record_call,
            *self.inbox.activities(),
        ]

    def journey(self) -> list[tuple[str, timedelta]]:
        """(channel, time after abandonment) of every send."""
        assert self.abandoned_at is not None
        return [(s.channel, to_the_minute(s.at - self.abandoned_at)) for s in self.sent]


@dataclass
class Cart:
    env: WorkflowEnvironment
    fakes: FakeCartActivities
    handle: WorkflowHandle[CartRecoveryWorkflow, CartRecoveryResult]
    started_at: datetime

    async def result(self) -> CartRecoveryResult:
        return await self.handle.result()  # the test server skips time meanwhile


StartCart = Callable[..., Awaitable[Cart]]


@pytest.fixture
async def cart_worker(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[StartCart]:
    """Starts carts on a worker with the fake activities; yields a function to start one."""
    workers: list[Worker] = []
    started = StartedWorkflows()
    client = started.client(time_skipping_env.client)

    async def start(
        fakes: FakeCartActivities,
        steps: list[StepSpec] = DEFAULT_STEPS,
        has_contact: bool = True,
    ) -> Cart:
        queue = f"{task_queue}-{len(workers)}"  # each cart's fakes get their own worker
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[CartRecoveryWorkflow],
            activities=fakes.all(),
        )
        await worker.__aenter__()
        workers.append(worker)
        now = await time_skipping_env.get_current_time()
        fakes.last_activity_at = fakes.last_activity_at or now
        handle = await client.start_workflow(
            CartRecoveryWorkflow.run,
            CartRecoveryInput(
                retailer_id="logic",
                cart_id=uuid.uuid4().hex[:8],
                cadence=CadenceSpec(
                    version=1,
                    abandon_after_seconds=int(ABANDON_AFTER.total_seconds()),
                    expire_after_seconds=int(EXPIRE_AFTER.total_seconds()),
                    steps=steps,
                    guards=GuardSpec(quiet_start="00:00", quiet_end="00:00"),
                ),
                last_activity_at=now,
                has_contact=has_contact,
                cart_value=fakes.cart_value,
            ),
            id=f"cart-logic-{uuid.uuid4().hex}",
            task_queue=queue,
        )
        return Cart(time_skipping_env, fakes, handle, now)

    yield start
    await started.terminate_running(client)
    for worker in workers:
        await worker.__aexit__(None, None, None)


async def test_default_cadence_sends_each_step_at_its_delay_after_abandonment(
    cart_worker: StartCart,
) -> None:
    cart = await cart_worker(FakeCartActivities(cart_value=120.0))

    result = await cart.result()

    # The journey ends after its last step (no timer until the cart expires), and the first
    # email's activity settled the abandonment: no separate re-read of the cart.
    assert result.stage == "completed"
    assert cart.fakes.refreshes == [] and len(cart.fakes.judged) == 1
    assert cart.fakes.abandoned_at is not None
    assert to_the_minute(cart.fakes.abandoned_at - cart.started_at) == ABANDON_AFTER
    assert cart.fakes.journey() == [
        ("email", timedelta(hours=1)),
        ("sms", timedelta(days=1)),
        ("email", timedelta(days=3)),
    ]
    assert [(s.channel, s.outcome) for s in result.steps] == [
        ("email", "sent"),
        ("sms", "sent"),
        ("agent_call", "skipped"),  # 120 is below the call's 200
        ("email", "sent"),
    ]
    assert cart.fakes.nudges == [] and cart.fakes.inbox.opened == []


async def test_a_shopper_busy_after_the_start_gets_the_first_email_later_and_backdated(
    cart_worker: StartCart,
) -> None:
    """Minor edits never reach the workflow: its timer fires when the email would be due had
    the shopper left at the start; the activity finds later activity and says "not due"."""
    fakes = FakeCartActivities()
    cart = await cart_worker(fakes)
    fakes.last_activity_at = cart.started_at + timedelta(minutes=40)  # edits the API stored

    result = await cart.result()

    assert fakes.abandoned_at is not None
    assert fakes.abandoned_at - cart.started_at == timedelta(minutes=40) + ABANDON_AFTER
    assert fakes.journey()[0] == ("email", timedelta(hours=1))
    # Judged once, when the workflow's timer fired; it then slept once more (one more timer
    # and one more activity, however many edits there were).
    [judged] = fakes.judged
    assert to_the_minute(judged - cart.started_at) == ABANDON_AFTER + timedelta(hours=1)
    assert result.stage == "completed"


async def test_the_nudge_is_offered_once_and_only_while_the_shopper_is_on_the_site(
    cart_worker: StartCart,
) -> None:
    cart = await cart_worker(FakeCartActivities())

    await cart.handle.signal(CartRecoveryWorkflow.nudge_trigger, NudgeTrigger("idle"))
    await cart.handle.signal(CartRecoveryWorkflow.nudge_trigger, NudgeTrigger("exit_intent"))
    result = await cart.result()

    assert cart.fakes.nudges == ["idle"]
    nudge = result.steps[0]
    assert (nudge.channel, nudge.outcome, nudge.reason) == ("onsite", "sent", "idle")


async def test_an_order_signal_stops_the_journey_before_the_next_step(
    cart_worker: StartCart,
) -> None:
    cart = await cart_worker(FakeCartActivities())
    await cart.env.sleep(ABANDON_AFTER + timedelta(hours=2))  # the first email went out

    await cart.handle.signal(CartRecoveryWorkflow.order_placed, OrderPlaced("o-1", 120.0))
    result = await cart.result()

    assert result.stage == "recovered"
    assert [s.channel for s in cart.fakes.sent] == ["email"]


async def test_an_order_seen_by_the_database_first_stops_it_too(
    cart_worker: StartCart,
) -> None:
    """The send's guard found the cart ordered before the order's signal arrived."""
    stopped = SendStepResult(StepOutcome.STOPPED, "ordered")
    cart = await cart_worker(FakeCartActivities(answers={2: [stopped]}))

    result = await cart.result()

    assert result.stage == "recovered"
    assert [s.channel for s in cart.fakes.sent] == ["email"]
    assert (result.steps[-1].channel, result.steps[-1].outcome) == ("sms", "stopped")


async def test_a_purchase_before_abandonment_sends_nothing(
    cart_worker: StartCart,
) -> None:
    cart = await cart_worker(FakeCartActivities())

    await cart.handle.signal(CartRecoveryWorkflow.order_placed, OrderPlaced("o-1", 120.0))
    result = await cart.result()

    assert result.stage == "purchased"
    assert cart.fakes.refreshes == [] and cart.fakes.sent == []


async def test_quiet_hours_postpone_a_step_to_the_time_the_guard_names(
    cart_worker: StartCart,
) -> None:
    fakes = FakeCartActivities()
    cart = await cart_worker(fakes, steps=[StepSpec(1, "sms", delay_seconds=3600)])
    # The guard's answer is scripted relative to the abandonment, which the fake decides.
    abandoned = cart.started_at + ABANDON_AFTER
    later = abandoned + timedelta(hours=9)
    fakes.answers[1] = [SendStepResult(StepOutcome.POSTPONED, "quiet hours", retry_at=later)]

    result = await cart.result()

    assert fakes.journey() == [("sms", timedelta(hours=9))]
    assert [(s.channel, s.outcome) for s in result.steps] == [("sms", "sent")]


async def test_a_step_postponed_past_expiry_is_skipped(
    cart_worker: StartCart,
) -> None:
    fakes = FakeCartActivities()
    cart = await cart_worker(fakes, steps=[StepSpec(1, "sms", delay_seconds=3600)])
    too_late = cart.started_at + EXPIRE_AFTER + timedelta(hours=1)
    fakes.answers[1] = [SendStepResult(StepOutcome.POSTPONED, "quiet hours", retry_at=too_late)]

    result = await cart.result()

    assert fakes.sent == []
    assert [(s.outcome, s.reason) for s in result.steps] == [
        ("skipped", "quiet hours; cart expires first")
    ]


async def test_an_unanswered_call_is_tried_again_next_day_then_an_sms_goes(
    cart_worker: StartCart,
) -> None:
    fakes = FakeCartActivities(cart_value=450.0)
    call = StepSpec(3, "agent_call", delay_seconds=86400, sla_seconds=4 * 3600)
    cart = await cart_worker(fakes, steps=[call])

    for attempt in (1, 2):
        task = await _wait_for_task(cart, attempt)
        await cart.handle.execute_update(
            CartRecoveryWorkflow.claim_task, TaskClaim(task.task_id, "ana")
        )
        await cart.handle.execute_update(
            CartRecoveryWorkflow.complete_task, TaskCompletion(task.task_id, "ana", "no_answer")
        )
    result = await cart.result()

    first, second = fakes.inbox.opened
    assert to_the_minute(first.at - cart.started_at) == ABANDON_AFTER + timedelta(days=1)
    # Called again a day (CALL_RETRY_AFTER) after the first outcome came in; the test hands the
    # outcome in within an hour of workflow time (it skips time an hour at a time).
    assert timedelta(days=1) <= second.at - fakes.calls[0].at < timedelta(days=1, hours=1)
    assert (first.spec.kind, first.spec.sla_seconds) == ("call_shopper", 4 * 3600)
    assert first.due_at - first.at == timedelta(hours=4)
    assert [c.outcome for c in fakes.calls] == ["no_answer", "no_answer"]
    assert [(s.channel, s.key_suffix) for s in fakes.sent] == [("sms", "-sms-fallback")]
    assert result.stage == "completed"


async def test_a_declined_call_ends_the_journey_as_declined(
    cart_worker: StartCart,
) -> None:
    fakes = FakeCartActivities(cart_value=450.0)
    steps = [StepSpec(3, "agent_call", delay_seconds=3600), StepSpec(4, "email", 86400)]
    cart = await cart_worker(fakes, steps=steps)

    task = await _wait_for_task(cart, 1)
    await cart.handle.execute_update(CartRecoveryWorkflow.claim_task, TaskClaim(task.task_id, "a"))
    await cart.handle.execute_update(
        CartRecoveryWorkflow.complete_task,
        TaskCompletion(task.task_id, "a", "reached_not_interested"),
    )
    result = await cart.result()

    assert result.stage == "declined"
    assert fakes.sent == []  # the email after the call never goes


async def test_an_anonymous_cart_waits_for_a_contact_before_following_up(
    cart_worker: StartCart,
) -> None:
    fakes = FakeCartActivities()
    fakes.has_contact = False
    cart = await cart_worker(fakes, steps=[StepSpec(1, "email", 3600)], has_contact=False)
    await cart.env.sleep(ABANDON_AFTER + timedelta(hours=5))
    assert fakes.sent == []

    await cart.handle.signal(CartRecoveryWorkflow.contact_known)
    await cart.result()

    # The email goes when the contact becomes known, not at its original time.
    assert [s.channel for s in fakes.sent] == ["email"]
    assert fakes.journey()[0][1] >= timedelta(hours=5)


async def _wait_for_task(cart: Cart, count: int) -> OpenTaskInput:
    """Skips workflow time until the workflow has opened ``count`` tasks."""
    for _ in range(200):
        if len(cart.fakes.inbox.opened) >= count:
            return cart.fakes.inbox.opened[count - 1]
        await cart.env.sleep(timedelta(hours=1))
    raise AssertionError(f"the workflow opened {len(cart.fakes.inbox.opened)} tasks, not {count}")
