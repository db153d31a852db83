"""Starting and signalling feedback-case workflows (and promoters' thank-yous) for answers."""

import contextlib

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from winback.customers.models import Customer
from winback.feedback.alert_rules import AlertRulesPublic, CaseSlas
from winback.feedback.alert_rules_store import rules_version
from winback.feedback.answers import Effect, RecordedAnswer
from winback.feedback.models import FeedbackCase
from winback.retailers.models import Retailer
from workflows import search_attributes as sa
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.promoter_thanks import PromoterThanksWorkflow
from workflows.feedback.types import (
    CaseInput,
    CaseSlaSpec,
    Contact,
    FollowUpAnswer,
    JoinedFeedback,
    ThanksInput,
)
from workflows.vocabulary import CaseStage


async def apply_answer_effect(
    session: AsyncSession,
    client: Client,
    *,
    task_queue: str,
    retailer: Retailer,
    recorded: RecordedAnswer,
) -> list[str]:
    """Starts or signals what the answer calls for; safe to repeat for a resent answer."""
    answer, case = recorded.answer, recorded.case
    if recorded.effect == Effect.OPENED_CASE and case is not None:
        rules = await rules_version(session, retailer_id=retailer.id, version=case.rules_version)
        assert rules is not None
        await _start_case(
            session,
            client,
            task_queue,
            retailer,
            case,
            answer.scale,
            answer.score,
            answer.comment,
            rules,
        )
        return ["case_started"]
    if recorded.effect == Effect.JOINED_CASE and case is not None:
        handle = client.get_workflow_handle_for(FeedbackCaseWorkflow.run, case.workflow_id)
        joined = JoinedFeedback(
            answer.id or 0, answer.scale, answer.score, answer.comment, hot=answer.severity == "hot"
        )
        if await _signal(handle.signal(FeedbackCaseWorkflow.feedback_joined, joined)):
            return ["feedback_joined"]
        return []
    if recorded.effect == Effect.FOLLOW_UP_LINKED and case is not None:
        handle = client.get_workflow_handle_for(FeedbackCaseWorkflow.run, case.workflow_id)
        follow_up = FollowUpAnswer(answer.id or 0, answer.scale, answer.score)
        if await _signal(handle.signal(FeedbackCaseWorkflow.follow_up_answered, follow_up)):
            return ["follow_up_answered"]
        return []
    if recorded.effect == Effect.THANKED and recorded.rules is not None:
        with contextlib.suppress(WorkflowAlreadyStartedError):  # thanked already
            await client.start_workflow(
                PromoterThanksWorkflow.run,
                ThanksInput(retailer.id, answer.id or 0, recorded.rules.promoters.review_url),
                id=f"thanks-{retailer.id}-{answer.id}",
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(sa.RETAILER, retailer.id)]
                ),
            )
        return ["thanks_started"]
    return []


def _slas(slas: CaseSlas) -> CaseSlaSpec:
    return CaseSlaSpec(
        contact_seconds=int(slas.contact.total_seconds()),
        root_cause_seconds=int(slas.root_cause.total_seconds()),
        resolution_seconds=int(slas.resolution.total_seconds()),
    )


async def _start_case(
    session: AsyncSession,
    client: Client,
    task_queue: str,
    retailer: Retailer,
    case: FeedbackCase,
    scale: str,
    score: int,
    comment: str | None,
    rules: AlertRulesPublic,
) -> None:
    unit = rules.unit(case.business_unit)
    assert unit is not None and case.id is not None
    customer = await session.get(Customer, case.customer_id) if case.customer_id else None
    follow_up = rules.follow_up
    case_input = CaseInput(
        retailer_id=retailer.id,
        case_id=case.id,
        answer_id=case.answer_id,
        business_unit=unit.id,
        severity=case.severity,
        owner=Contact(unit.owner.name, unit.owner.email, unit.owner.phone),
        escalation_chain=[Contact(p.name, p.email, p.phone) for p in unit.escalation],
        normal_slas=_slas(rules.slas.normal),
        hot_slas=_slas(rules.slas.hot),
        root_causes=list(rules.root_causes),
        resolution_codes=list(rules.resolution_codes),
        contact_attempts=rules.contact_attempts,
        remind_before_fraction=rules.remind_before_fraction,
        retry_after_seconds=int(rules.retry_after.total_seconds()),
        follow_up_delay_seconds=(
            int(follow_up.delay.total_seconds()) if follow_up.enabled else None
        ),
        follow_up_wait_seconds=int(follow_up.wait.total_seconds()),
        scale=scale,
        score=score,
        comment=comment,
        customer_name=customer.name if customer else None,
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):  # it ran and closed before
        await client.start_workflow(
            FeedbackCaseWorkflow.run,
            case_input,
            id=case.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.RETAILER, retailer.id),
                    SearchAttributePair(sa.STAGE, CaseStage.ALERTING),
                    SearchAttributePair(sa.SEVERITY, case.severity),
                    SearchAttributePair(sa.BUSINESS_UNIT, unit.id),
                ]
            ),
            static_summary=(
                f"{case.severity.upper()} case #{case.id} in {unit.name}: "
                f"{scale.upper()} {score}" + (f' "{comment[:80]}"' if comment else "")
            ),
        )


async def _signal(call: object) -> bool:
    """Awaits a signal; False if the case's workflow has already finished."""
    try:
        await call  # type: ignore[misc]
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True
