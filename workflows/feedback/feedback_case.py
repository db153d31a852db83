"""FeedbackCaseWorkflow: the closed loop for one unhappy answer, ``case-<retailer>-<id>``.

alert the owner → contact the customer (retried while unanswered) → root cause → resolution →
close → an optional follow-up survey whose answer is linked back. Each person's step is a human
task (workflows/human_tasks.py); a step past its SLA escalates along the business unit's chain.
More feedback from the same customer while the case is open joins it (a signal).
"""

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import search_attributes as sa
from workflows.errors import ErrorType
from workflows.feedback import activities as case_activities
from workflows.feedback.types import (
    AlertOwnerInput,
    CaseChange,
    CaseInput,
    CaseResult,
    CaseSlaSpec,
    CaseState,
    FollowUpAnswer,
    FollowUpSurveyInput,
    JoinedFeedback,
)
from workflows.retries import DATABASE_RETRY, NOTIFY_HEARTBEAT_TIMEOUT, NOTIFY_RETRY
from workflows.tasks.human_tasks import HumanTaskWorkflow
from workflows.tasks.types import TaskCompletion, TaskSpec
from workflows.vocabulary import CaseStage, CaseTaskKind, CloseReason, ContactOutcome


@workflow.defn
class FeedbackCaseWorkflow(HumanTaskWorkflow):
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self._init_tasks()
        self._input = input
        self._state = CaseState(stage=CaseStage.ALERTING, severity=input.severity)
        self._follow_up: FollowUpAnswer | None = None

    @property
    def retailer_id(self) -> str:
        return self._input.retailer_id

    @workflow.signal
    def feedback_joined(self, joined: JoinedFeedback) -> None:
        """More feedback from this customer: it joins the case, and a hot one makes it hot."""
        if joined.answer_id in self._state.joined_answers:
            return  # a resent answer
        self._state.joined_answers.append(joined.answer_id)
        if joined.hot and self._state.severity != "hot":
            self._state.severity = "hot"  # the next steps get the hot SLAs
            workflow.upsert_search_attributes([sa.SEVERITY.value_set("hot")])

    @workflow.signal
    def follow_up_answered(self, answer: FollowUpAnswer) -> None:
        """The customer answered the follow-up survey."""
        self._follow_up = answer

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    def validate_task_data(self, spec: TaskSpec, completion: TaskCompletion) -> None:
        """Root causes come from the retailer's taxonomy, resolutions from its codes."""
        data = completion.data
        if spec.kind == CaseTaskKind.ROOT_CAUSE:
            _require_choice(data, "category", self._input.root_causes)
            facts = data.get("facts", [])
            if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
                raise _invalid("data.facts must be a list of strings")
        elif spec.kind == CaseTaskKind.RESOLUTION:
            _require_choice(data, "resolution_code", self._input.resolution_codes)
            if not isinstance(data.get("won_back"), bool):
                raise _invalid("data.won_back must be true or false")

    @workflow.run
    async def run(self, input: CaseInput) -> CaseResult:
        who = input.customer_name or "the customer"
        answer = f"{input.scale.upper()} {input.score}" + (
            f': "{input.comment}"' if input.comment else ""
        )
        await workflow.execute_activity(
            case_activities.alert_owner,
            AlertOwnerInput(
                retailer_id=input.retailer_id,
                case_id=input.case_id,
                workflow_id=workflow.info().workflow_id,
                owner=input.owner,
                severity=input.severity,
                summary=(
                    f"{input.severity.upper()} case in {input.business_unit}: "
                    f"{who} answered {answer}"
                ),
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=NOTIFY_HEARTBEAT_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary=f"alert {input.owner.name}",
        )

        # Each record writes the stage the case moves into, so the listing shows what it waits for.
        self._set_stage(CaseStage.CONTACTING)
        await self._record({})
        for attempt in range(1, input.contact_attempts + 1):
            done = await self._task(
                CaseTaskKind.CONTACT,
                f"Contact {who} about their {answer} (attempt {attempt})",
                list(ContactOutcome.ALL),
                self._slas().contact_seconds,
            )
            self._state.contact_attempts = attempt
            fields: dict[str, Any] = {"contact_attempts": attempt, "contact_outcome": done.outcome}
            if done.outcome == ContactOutcome.REACHED:
                fields["first_contact_at"] = workflow.now()
                self._set_stage(CaseStage.ROOT_CAUSE)
            await self._record(fields)
            if done.outcome == ContactOutcome.REACHED:
                break
            if done.outcome == ContactOutcome.REFUSED:
                return await self._close(CloseReason.REFUSED)
            if attempt < input.contact_attempts:
                await workflow.sleep(
                    timedelta(seconds=input.retry_after_seconds), summary="try the customer again"
                )
        else:
            return await self._close(CloseReason.NOT_REACHED)

        cause = await self._task(
            CaseTaskKind.ROOT_CAUSE,
            f"Find the root cause of {who}'s {answer}",
            ["identified"],
            self._slas().root_cause_seconds,
        )
        self._state.root_cause = cause.data["category"]
        self._set_stage(CaseStage.RESOLUTION)
        await self._record(
            {
                "root_cause": cause.data["category"],
                "root_cause_notes": cause.notes,
                "facts": list(cause.data.get("facts", [])),
            }
        )

        resolution = await self._task(
            CaseTaskKind.RESOLUTION,
            f"Resolve {who}'s case ({self._state.root_cause})",
            ["resolved"],
            self._slas().resolution_seconds,
        )
        self._state.resolution_code = resolution.data["resolution_code"]
        self._state.won_back = bool(resolution.data["won_back"])
        await self._record(
            {
                "resolution_code": self._state.resolution_code,
                "action_taken": resolution.notes,
                "won_back": self._state.won_back,
            }
        )
        return await self._close(CloseReason.RESOLVED)

    async def _close(self, reason: str) -> CaseResult:
        self._state.close_reason = reason
        self._set_stage(CaseStage.CLOSED)
        await self._record(
            {"status": "closed", "close_reason": reason, "closed_at": workflow.now()}
        )
        delay = self._input.follow_up_delay_seconds
        if reason == CloseReason.RESOLVED and delay is not None:
            await self._follow_up_survey(delay)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseResult(
            close_reason=reason,
            won_back=self._state.won_back,
            follow_up_score=self._state.follow_up_score,
        )

    async def _follow_up_survey(self, delay: int) -> None:
        """Asks the customer again after ``delay`` and links their answer to the case."""
        self._state.stage = CaseStage.FOLLOW_UP
        await workflow.sleep(timedelta(seconds=delay), summary="until the follow-up survey")
        await workflow.execute_activity(
            case_activities.send_follow_up_survey,
            FollowUpSurveyInput(
                retailer_id=self._input.retailer_id,
                case_id=self._input.case_id,
                workflow_id=workflow.info().workflow_id,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=NOTIFY_HEARTBEAT_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary="send the follow-up survey",
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._follow_up is not None,
                timeout=timedelta(seconds=self._input.follow_up_wait_seconds),
                timeout_summary="waiting for the follow-up answer",
            )
        self._state.stage = CaseStage.CLOSED
        if self._follow_up is not None:
            self._state.follow_up_score = self._follow_up.score
        await self._record({"follow_up_score": self._state.follow_up_score})

    async def _task(
        self, kind: str, title: str, outcomes: list[str], sla_seconds: int
    ) -> TaskCompletion:
        input = self._input
        spec = TaskSpec(
            kind=kind,
            title=title,
            allowed_outcomes=outcomes,
            sla_seconds=sla_seconds,
            priority=2 if self._state.severity == "hot" else 1,
            queue=input.business_unit,
            case_id=str(input.case_id),
            remind_before_seconds=int(sla_seconds * input.remind_before_fraction) or None,
            details={
                "escalation_chain": [
                    {"name": c.name, "email": c.email, "phone": c.phone}
                    for c in input.escalation_chain
                ],
                "business_unit": input.business_unit,
                "answer": {"scale": input.scale, "score": input.score, "comment": input.comment},
                "severity": self._state.severity,
            },
        )
        workflow.set_current_details(f"**Stage:** {self._state.stage}  \n**Waiting for:** {title}")
        completion = await self.run_task(spec, stop=lambda: False)
        assert completion is not None  # a case's tasks are never cancelled from outside
        return completion

    def _slas(self) -> CaseSlaSpec:
        return self._input.hot_slas if self._state.severity == "hot" else self._input.normal_slas

    def _set_stage(self, stage: str) -> None:
        self._state.stage = stage
        workflow.upsert_search_attributes([sa.STAGE.value_set(stage)])

    async def _record(self, fields: dict[str, Any]) -> None:
        fields = {"stage": self._state.stage, "severity": self._state.severity, **fields}
        await workflow.execute_activity(
            case_activities.record_case,
            CaseChange(
                retailer_id=self._input.retailer_id,
                case_id=self._input.case_id,
                at=workflow.now(),
                fields=fields,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DATABASE_RETRY,
            summary=f"record {self._state.stage}",
        )


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorType.INVALID_TASK_DATA, non_retryable=True)


def _require_choice(data: dict[str, Any], key: str, allowed: list[str]) -> None:
    if data.get(key) not in allowed:
        raise _invalid(f"data.{key} must be one of: {', '.join(allowed)}")
