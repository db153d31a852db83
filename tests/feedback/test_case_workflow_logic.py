"""FeedbackCaseWorkflow's and PromoterThanksWorkflow's decisions alone, with their activities
replaced by fakes under the real activity names: no database, no API, no provider.

The fakes record what the workflow asked and at what workflow time, so the tests read as the
closed loop: alert, contact (retried), root cause, resolution, follow-up, and escalation when a
step's SLA passes. Each test has a time-skipping server of its own (after the shared server had run
other modules' stacks, the first test here waited forever in CI); every time is taken from it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.fake_inbox import FakeTaskInbox
from tests.support.started_workflows import StartedWorkflows
from tests.support.workflows import to_the_minute
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.promoter_thanks import PromoterThanksWorkflow
from workflows.feedback.types import (
    AlertOwnerInput,
    CaseChange,
    CaseInput,
    CaseResult,
    CaseSlaSpec,
    Contact,
    FollowUpAnswer,
    FollowUpSurveyInput,
    JoinedFeedback,
    ThanksInput,
)
from workflows.tasks.types import OpenTaskInput, TaskClaim, TaskCompletion, TaskView

NORMAL = CaseSlaSpec(
    contact_seconds=24 * 3600, root_cause_seconds=3 * 86400, resolution_seconds=7 * 86400
)
HOT = CaseSlaSpec(contact_seconds=2 * 3600, root_cause_seconds=86400, resolution_seconds=3 * 86400)
FOLLOW_UP_DELAY = timedelta(days=7)


@dataclass
class FakeCaseActivities:
    """The case's activities. ``follow_up_score``: the customer answers the survey at once."""

    client: Client
    follow_up_score: int | None = None
    alerts: list[AlertOwnerInput] = field(default_factory=list)
    changes: list[CaseChange] = field(default_factory=list)
    surveys: list[FollowUpSurveyInput] = field(default_factory=list)
    thanked: list[ThanksInput] = field(default_factory=list)
    inbox: FakeTaskInbox = field(default_factory=FakeTaskInbox)

    @activity.defn(name="alert_owner")
    async def alert_owner(self, input: AlertOwnerInput) -> list[str]:
        self.alerts.append(input)
        return ["email"]

    @activity.defn(name="record_case")
    async def record_case(self, change: CaseChange) -> None:
        self.changes.append(change)

    @activity.defn(name="send_follow_up_survey")
    async def send_follow_up_survey(self, input: FollowUpSurveyInput) -> str | None:
        self.surveys.append(input)
        if self.follow_up_score is not None:  # as the API does when the answer comes in
            handle = self.client.get_workflow_handle_for(
                FeedbackCaseWorkflow.run, input.workflow_id
            )
            await handle.signal(
                FeedbackCaseWorkflow.follow_up_answered,
                FollowUpAnswer(answer_id=99, scale="nps", score=self.follow_up_score),
            )
        return "email"

    @activity.defn(name="thank_promoter")
    async def thank_promoter(self, input: ThanksInput) -> str | None:
        self.thanked.append(input)
        return "email"

    def activities(self) -> list[object]:
        return [
            self.alert_owner,
            self.record_case,
            self.send_follow_up_survey,
            self.thank_promoter,
            *self.inbox.activities(),
        ]

    def stages(self) -> list[str]:
        return [c.fields["stage"] for c in self.changes]


@dataclass
class Case:
    env: WorkflowEnvironment
    fakes: FakeCaseActivities
    handle: WorkflowHandle[FeedbackCaseWorkflow, CaseResult]
    started_at: datetime

    async def result(self) -> CaseResult:
        return await self.handle.result()  # the test server skips time meanwhile

    async def task(self, kind: str, number: int = 1) -> TaskView:
        """The ``number``-th task of ``kind`` once it is open, without skipping time."""
        async with asyncio.timeout(10):
            while True:
                tasks = [
                    t for t in await self.handle.query(FeedbackCaseWorkflow.tasks) if t.kind == kind
                ]
                if len(tasks) >= number and tasks[number - 1].status in ("open", "claimed"):
                    return tasks[number - 1]
                await asyncio.sleep(0.02)

    async def complete(self, kind: str, outcome: str, number: int = 1, **data: Any) -> TaskView:
        task = await self.task(kind, number)
        await self.handle.execute_update(
            FeedbackCaseWorkflow.claim_task, TaskClaim(task.task_id, "ana")
        )
        return await self.handle.execute_update(
            FeedbackCaseWorkflow.complete_task,
            TaskCompletion(task.task_id, "ana", outcome, notes=f"{outcome}!", data=data),
        )

    def opened(self, kind: str) -> list[OpenTaskInput]:
        return [t for t in self.fakes.inbox.opened if t.spec.kind == kind]


@dataclass
class CaseWorker:
    """A worker running the case workflows with the fake activities."""

    env: WorkflowEnvironment
    client: Client
    task_queue: str
    fakes: FakeCaseActivities

    async def start(self, **overrides: Any) -> Case:
        """Opens a case; ``answer_follow_up``: the score the customer answers the survey with."""
        self.fakes.follow_up_score = overrides.pop("answer_follow_up", None)
        values: dict[str, Any] = {
            "retailer_id": "logic",
            "case_id": 7,
            "answer_id": 70,
            "business_unit": "store-madrid",
            "severity": "normal",
            "owner": Contact("Olga", email="olga@acme.test"),
            "escalation_chain": [Contact("Marta", email="marta@acme.test")],
            "normal_slas": NORMAL,
            "hot_slas": HOT,
            "root_causes": ["delivery_late", "other"],
            "resolution_codes": ["refund", "apology"],
            "score": 3,
            "comment": "Late again",
            "customer_name": "Ana",
            **overrides,
        }
        now = await self.env.get_current_time()
        handle = await self.client.start_workflow(
            FeedbackCaseWorkflow.run,
            CaseInput(**values),
            id=f"case-logic-{uuid.uuid4().hex}",
            task_queue=self.task_queue,
        )
        return Case(self.env, self.fakes, handle, now)


@pytest.fixture
async def cases(
    fresh_time_skipping_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[CaseWorker]:
    started = StartedWorkflows()
    client = started.client(fresh_time_skipping_env.client)
    fakes = FakeCaseActivities(client)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[FeedbackCaseWorkflow, PromoterThanksWorkflow],
        activities=fakes.activities(),
    ):
        yield CaseWorker(fresh_time_skipping_env, client, task_queue, fakes)
        await started.terminate_running(client)


async def test_the_loop_goes_contact_root_cause_resolution_then_asks_again(
    cases: CaseWorker,
) -> None:
    case = await cases.start(
        follow_up_delay_seconds=int(FOLLOW_UP_DELAY.total_seconds()), answer_follow_up=9
    )

    await case.complete("contact_customer", "reached")
    await case.complete("root_cause", "identified", category="delivery_late", facts=["scan"])
    await case.complete("resolution", "resolved", resolution_code="refund", won_back=True)
    result = await case.result()

    assert (result.close_reason, result.won_back, result.follow_up_score) == ("resolved", True, 9)
    [alert] = case.fakes.alerts
    assert alert.summary == 'NORMAL case in store-madrid: Ana answered NPS 3: "Late again"'
    assert case.fakes.stages() == [
        "contacting",
        "root_cause",
        "resolution",
        "resolution",
        "closed",
        "closed",
    ]
    fields = [c.fields for c in case.fakes.changes]
    assert fields[2]["root_cause"] == "delivery_late" and fields[2]["facts"] == ["scan"]
    assert (fields[3]["resolution_code"], fields[3]["won_back"]) == ("refund", True)
    assert (fields[4]["status"], fields[4]["close_reason"]) == ("closed", "resolved")
    assert fields[5] == {"stage": "closed", "severity": "normal", "follow_up_score": 9}
    [survey] = case.fakes.surveys
    assert to_the_minute(survey.at - case.fakes.changes[4].at) == FOLLOW_UP_DELAY
    slas = [(t.spec.kind, t.due_at - t.at) for t in case.fakes.inbox.opened]
    assert slas == [
        ("contact_customer", timedelta(hours=24)),
        ("root_cause", timedelta(days=3)),
        ("resolution", timedelta(days=7)),
    ]


async def test_a_missed_sla_reminds_then_escalates_every_period_up_to_the_limit(
    cases: CaseWorker,
) -> None:
    case = await cases.start(severity="hot", comment="I will call my lawyer")
    await case.task("contact_customer")

    await case.env.sleep(timedelta(hours=9))  # four and a half 2-hour SLA periods
    await case.complete("contact_customer", "refused")
    result = await case.result()

    [opened] = case.opened("contact_customer")
    assert (opened.spec.priority, opened.due_at - opened.at) == (2, timedelta(hours=2))
    [reminder] = case.fakes.inbox.reminded
    assert to_the_minute(reminder.at - opened.at) == timedelta(
        hours=1, minutes=30
    )  # a quarter before due
    escalations = [(e.level, to_the_minute(e.at - opened.at)) for e in case.fakes.inbox.escalated]
    assert escalations == [
        (1, timedelta(hours=2)),
        (2, timedelta(hours=4)),
        (3, timedelta(hours=6)),
    ]
    assert all(e.next_due_at - e.at == timedelta(hours=2) for e in case.fakes.inbox.escalated)
    assert result.close_reason == "refused"


async def test_unanswered_contacts_are_retried_after_the_wait_then_the_case_closes(
    cases: CaseWorker,
) -> None:
    case = await cases.start(contact_attempts=2, retry_after_seconds=4 * 3600)

    await case.complete("contact_customer", "not_reached")
    await case.env.sleep(timedelta(hours=4))
    await case.complete("contact_customer", "not_reached", number=2)
    result = await case.result()

    assert result.close_reason == "not_reached"
    _, second = case.opened("contact_customer")
    first_done = case.fakes.changes[1]  # the attempt's outcome, recorded when it came in
    assert first_done.fields["contact_outcome"] == "not_reached"
    assert to_the_minute(second.at - first_done.at) == timedelta(hours=4)
    assert case.opened("root_cause") == []


async def test_a_hot_answer_joining_the_case_gives_the_next_steps_hot_slas(
    cases: CaseWorker,
) -> None:
    case = await cases.start()
    await case.task("contact_customer")

    await case.handle.signal(
        FeedbackCaseWorkflow.feedback_joined,
        JoinedFeedback(answer_id=71, scale="nps", score=1, comment="cancel it", hot=True),
    )
    await case.handle.signal(  # the same answer again changes nothing
        FeedbackCaseWorkflow.feedback_joined,
        JoinedFeedback(answer_id=71, scale="nps", score=1, comment="cancel it", hot=True),
    )
    await case.complete("contact_customer", "reached")
    root_cause = await case.task("root_cause")

    state = await case.handle.query(FeedbackCaseWorkflow.state)
    assert (state.severity, state.joined_answers) == ("hot", [71])
    [opened] = case.opened("root_cause")
    assert opened.due_at - opened.at == timedelta(days=1)  # the hot root-cause SLA
    assert root_cause.priority == 2


async def test_a_root_cause_outside_the_taxonomy_is_rejected_and_the_task_stays_open(
    cases: CaseWorker,
) -> None:
    case = await cases.start()
    await case.complete("contact_customer", "reached")
    task = await case.task("root_cause")
    await case.handle.execute_update(
        FeedbackCaseWorkflow.claim_task, TaskClaim(task.task_id, "ana")
    )

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await case.handle.execute_update(
            FeedbackCaseWorkflow.complete_task,
            TaskCompletion(task.task_id, "ana", "identified", data={"category": "aliens"}),
        )

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidTaskData"
    assert "delivery_late, other" in str(cause)
    assert (await case.task("root_cause")).status == "claimed"


async def test_a_promoter_is_thanked_once_at_workflow_time(cases: CaseWorker) -> None:
    before = await cases.env.get_current_time()

    channel = await cases.client.execute_workflow(
        PromoterThanksWorkflow.run,
        ThanksInput(retailer_id="logic", answer_id=80, review_url="https://reviews.example"),
        id=f"thanks-logic-{uuid.uuid4().hex}",
        task_queue=cases.task_queue,
    )

    assert channel == "email"
    [thanked] = cases.fakes.thanked
    assert thanked.review_url == "https://reviews.example"
    assert thanked.at is not None and thanked.at >= before  # stamped by the workflow
