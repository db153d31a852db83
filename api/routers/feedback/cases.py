"""Feedback cases: the listing, and one case with its answers, tasks, escalations and the live
state of its workflow (`case-<retailer>-<id>`). For the retailer (`X-API-Key`) and its agents
(`X-Agent-Token`); an agent works a case's steps through `/v1/tasks`."""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from api.deps import CallerRetailerDep, SessionDep, TemporalClientDep
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.platform.clock import utcnow
from winback.tasks.commands import task_public
from winback.tasks.models import Escalation, HumanTask, TaskPublic
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.types import CaseState

router = APIRouter(prefix="/v1/cases", tags=["feedback"])
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The case's number.")]
QUERY_TIMEOUT = timedelta(seconds=5)


class CasePublic(BaseModel):
    """The case's row: what its workflow has recorded so far."""

    id: int
    workflow_id: str = Field(description="`case-<retailer>-<id>`, in the Temporal UI.")
    customer_id: int | None
    answer_id: int = Field(description="The answer that opened the case.")
    business_unit: str
    severity: str = Field(description="normal or hot.")
    status: str = Field(description="open or closed.")
    stage: str = Field(description="alerting, contacting, root_cause, resolution, follow_up, …")
    owner: str | None
    opened_at: datetime
    first_contact_at: datetime | None
    contact_attempts: int
    contact_outcome: str | None
    root_cause: str | None
    root_cause_notes: str | None
    facts: list[str]
    resolution_code: str | None
    action_taken: str | None
    won_back: bool | None
    close_reason: str | None
    closed_at: datetime | None
    follow_up_score: int | None
    rules_version: int


class CaseCustomer(BaseModel):
    """Who to contact."""

    id: int
    name: str | None
    email: str | None
    phone: str | None
    consent_email: bool
    consent_sms: bool
    consent_voice: bool


class AnswerPublic(BaseModel):
    id: int
    channel: str
    scale: str
    score: int
    comment: str | None
    kind: str = Field(description="detractor, passive or promoter.")
    severity: str | None
    customer_id: int | None
    order_id: str | None
    business_unit: str
    touchpoint: str | None
    answered_at: datetime
    received_at: datetime
    case_id: int | None
    follow_up_of: int | None = Field(description="Set on the answer to the follow-up survey.")
    rules_version: int


class EscalationPublic(BaseModel):
    id: int
    task_id: str
    level: int
    notified: str | None
    queue: str
    at: datetime
    details: dict[str, Any]


class CaseDetail(CasePublic):
    customer: CaseCustomer | None
    answers: list[AnswerPublic] = Field(
        description="The opening answer, those that joined it, and the follow-up's, oldest first."
    )
    tasks: list[TaskPublic] = Field(description="Its contact, root-cause and resolution tasks.")
    escalations: list[EscalationPublic]
    workflow: CaseState | None = Field(
        description="The workflow's live state; null if it could not be asked right now."
    )


@router.get("", response_model=list[CasePublic])
async def list_cases(
    retailer: CallerRetailerDep,
    session: SessionDep,
    status_: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
    severity: Literal["normal", "hot"] | None = None,
    business_unit: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CasePublic]:
    """The retailer's cases, newest first."""
    query = select(FeedbackCase).where(FeedbackCase.retailer_id == retailer.id)
    if status_ is not None:
        query = query.where(FeedbackCase.status == status_)
    if severity is not None:
        query = query.where(FeedbackCase.severity == severity)
    if business_unit is not None:
        query = query.where(FeedbackCase.business_unit == business_unit)
    rows = await session.exec(
        query.order_by(col(FeedbackCase.opened_at).desc(), col(FeedbackCase.id).desc()).limit(limit)
    )
    return [CasePublic.model_validate(c, from_attributes=True) for c in rows]


@router.get("/{case_id}", response_model=CaseDetail)
async def read_case(
    case_id: CaseId, retailer: CallerRetailerDep, session: SessionDep, client: TemporalClientDep
) -> CaseDetail:
    """One case: its row, the customer, every answer linked to it, its tasks and escalations,
    and its workflow's live state."""
    case = await session.get(FeedbackCase, case_id)
    if case is None or case.retailer_id != retailer.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    customer = await session.get(Customer, case.customer_id) if case.customer_id else None
    detail = CaseDetail(
        **CasePublic.model_validate(case, from_attributes=True).model_dump(),
        customer=CaseCustomer.model_validate(customer, from_attributes=True) if customer else None,
        answers=await _answers(session, retailer.id, case_id),
        tasks=await _tasks(session, retailer.id, case_id),
        escalations=await _escalations(session, retailer.id, case_id),
        workflow=None,
    )
    await session.commit()  # no transaction stays open while Temporal answers
    detail.workflow = await _live_state(client, case.workflow_id)
    return detail


async def _answers(session: AsyncSession, retailer_id: str, case_id: int) -> list[AnswerPublic]:
    rows = await session.exec(
        select(FeedbackAnswer)
        .where(FeedbackAnswer.retailer_id == retailer_id, FeedbackAnswer.case_id == case_id)
        .order_by(col(FeedbackAnswer.answered_at), col(FeedbackAnswer.id))
    )
    return [AnswerPublic.model_validate(a, from_attributes=True) for a in rows]


async def _tasks(session: AsyncSession, retailer_id: str, case_id: int) -> list[TaskPublic]:
    rows = await session.exec(
        select(HumanTask)
        .where(HumanTask.retailer_id == retailer_id, HumanTask.case_id == str(case_id))
        .order_by(col(HumanTask.created_at), col(HumanTask.id))
    )
    now = utcnow()
    return [task_public(t, now) for t in rows]


async def _escalations(
    session: AsyncSession, retailer_id: str, case_id: int
) -> list[EscalationPublic]:
    rows = await session.exec(
        select(Escalation)
        .where(Escalation.retailer_id == retailer_id, Escalation.case_id == case_id)
        .order_by(col(Escalation.at), col(Escalation.id))
    )
    return [EscalationPublic.model_validate(e, from_attributes=True) for e in rows]


async def _live_state(client: Client, workflow_id: str) -> CaseState | None:
    handle = client.get_workflow_handle_for(FeedbackCaseWorkflow.run, workflow_id)
    try:
        return await handle.query(FeedbackCaseWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return None  # no worker to answer right now, or no such run: the row still helps
