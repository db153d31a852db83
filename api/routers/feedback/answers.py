"""Survey answers in, from any channel."""

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel

from api.deps import RetailerDep, SessionDep, SettingsDep, TemporalClientDep
from winback.feedback.answers import FeedbackIn, NoAlertRules, record_answer
from winback.feedback.workflow_sync import apply_answer_effect

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


class AnswerAccepted(BaseModel):
    answer_id: int
    duplicate: bool
    kind: str
    severity: str | None
    effect: str
    case_id: int | None
    workflow_id: str | None
    workflow_actions: list[str]


@router.post(
    "",
    response_model=AnswerAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {"model": AnswerAccepted, "description": "A resent idempotency key"}
    },
)
async def post_feedback(
    body: FeedbackIn,
    retailer: RetailerDep,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    response: Response,
) -> AnswerAccepted:
    """Stores an answer (every answer, case or not) and acts on it: an unhappy one opens a case
    or joins the customer's open case; a promoter may get a thank-you; a follow-up answer is
    linked to its case. Resending the same idempotency key is safe (200, nothing counted twice).
    """
    try:
        recorded = await record_answer(session, retailer=retailer, answer=body)
    except NoAlertRules as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    await session.commit()
    actions = await apply_answer_effect(
        session, client, task_queue=settings.task_queue, retailer=retailer, recorded=recorded
    )
    if recorded.duplicate:
        response.status_code = status.HTTP_200_OK
    answer, case = recorded.answer, recorded.case
    assert answer.id is not None
    return AnswerAccepted(
        answer_id=answer.id,
        duplicate=recorded.duplicate,
        kind=answer.kind,
        severity=answer.severity,
        effect=recorded.effect,
        case_id=case.id if case else None,
        workflow_id=case.workflow_id if case else None,
        workflow_actions=actions,
    )
