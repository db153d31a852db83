"""Surveys Winback sends and collects itself: ``POST /v1/surveys`` asks a customer (email, SMS,
an automated call, or a link for the retailer to send), and the answers come back through the
hosted page (``api/pages/surveys``), an SMS reply (the inbound SMS webhook) or the keypad of the
call (``/v1/webhooks/twilio/<retailer>/survey-gather``, signed by Twilio)."""

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import RetailerDep, SessionDep, SettingsDep, TemporalClientDep
from api.routers.messaging.webhooks import TWIML, TwilioDep
from winback.feedback.alert_rules import SCALE_RANGE
from winback.feedback.answers import NoAlertRules
from winback.feedback.models import SurveyInvite
from winback.feedback.survey_links import survey_url
from winback.feedback.survey_texts import pick_language, text
from winback.feedback.surveys import (
    MAX_IVR_ATTEMPTS,
    SurveyIn,
    answer_invite,
    invite_survey,
    is_expired,
    parse_keypad,
    say_and_hang_up,
    survey_gather_url,
    survey_twiml,
)
from winback.feedback.workflow_sync import apply_answer_effect
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows import search_attributes as sa
from workflows.feedback.survey import SurveyWorkflow
from workflows.feedback.types import SurveyInput

router = APIRouter(tags=["feedback"])


class SurveyPublic(BaseModel):
    id: int
    channel: str
    scale: str
    url: str
    expires_at: datetime
    answered: bool
    answer_id: int | None
    answered_at: datetime | None
    workflow_id: str | None


class SurveyCreated(SurveyPublic):
    duplicate: bool


def _public(settings: Settings, retailer: Retailer, invite: SurveyInvite) -> SurveyPublic:
    assert invite.id is not None
    return SurveyPublic(
        id=invite.id,
        channel=invite.channel,
        scale=invite.scale,
        url=survey_url(settings, retailer.id, invite.id, invite.created_at),
        expires_at=invite.expires_at,
        answered=invite.answer_id is not None,
        answer_id=invite.answer_id,
        answered_at=invite.answered_at,
        workflow_id=None if invite.channel == "link" else f"survey-{retailer.id}-{invite.id}",
    )


@router.post(
    "/v1/surveys",
    response_model=SurveyCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {"model": SurveyCreated, "description": "A resent idempotency key"}
    },
)
async def create_survey(
    body: SurveyIn,
    retailer: RetailerDep,
    session: SessionDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    response: Response,
) -> SurveyCreated:
    """Asks a customer for an NPS (0-10) or CSAT (1-5) answer and records it when it comes:
    by email or SMS with a signed link to the hosted survey (an SMS reply with the score counts
    too), by an automated call that asks for the score on the keypad (`voice`), or `link` only
    (the answer's `url`, for you to send). One answer per survey, whatever the channel; it goes
    through the same path as `POST /v1/feedback` (alert rules, cases). Needs the customer's
    consent for the channel. A resent idempotency key is the same survey, sent once (200)."""
    try:
        made = await invite_survey(session, retailer=retailer, body=body, settings=settings)
    except NoAlertRules as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    await session.commit()
    invite = made.invite
    assert invite.id is not None
    if invite.channel != "link":
        await _start_sending(client, settings, retailer, invite)
    if not made.created:
        response.status_code = status.HTTP_200_OK
    return SurveyCreated(
        **_public(settings, retailer, invite).model_dump(), duplicate=not made.created
    )


@router.get("/v1/surveys/{survey_id}", response_model=SurveyPublic)
async def get_survey(
    survey_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    retailer: RetailerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> SurveyPublic:
    """One of the retailer's surveys: its link, and whether (and when) it was answered; the
    answer itself is in the feedback report and on its case."""
    invite = await session.get(SurveyInvite, survey_id)
    if invite is None or invite.retailer_id != retailer.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no survey {survey_id}")
    return _public(settings, retailer, invite)


async def _start_sending(
    client: Client, settings: Settings, retailer: Retailer, invite: SurveyInvite
) -> str:
    workflow_id = f"survey-{retailer.id}-{invite.id}"
    with contextlib.suppress(WorkflowAlreadyStartedError):  # sent already
        await client.start_workflow(
            SurveyWorkflow.run,
            SurveyInput(retailer.id, invite.id or 0),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.RETAILER, retailer.id)]
            ),
            static_summary=f"{invite.scale.upper()} survey #{invite.id} by {invite.channel}",
        )
    return workflow_id


# --- answers by phone (IVR) -------------------------------------------------------------------


def _twiml(content: str) -> Response:
    return Response(content=content, media_type=TWIML)


@router.post(
    "/v1/webhooks/twilio/{retailer_id}/survey-gather", response_class=Response, tags=["webhooks"]
)
async def twilio_survey_gather(
    twilio: TwilioDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
    invite_id: Annotated[
        int,
        Query(alias="invite", ge=1, le=2**31 - 1, description="The survey invite called about."),
    ],
    attempt: Annotated[int, Query(ge=1, le=MAX_IVR_ATTEMPTS)] = 1,
) -> Response:
    """The keys pressed after an IVR survey's question (the `<Gather>` action of its call;
    signed by Twilio and verified like every Twilio webhook, else 403). A score in range is the
    survey's answer (once: Twilio's retry, or a second call, finds it answered); anything else
    asks again, up to three times. Answers TwiML."""
    form, retailer = twilio.form, twilio.retailer
    invite = await session.get(SurveyInvite, invite_id)
    if invite is None or invite.retailer_id != retailer.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown survey")
    language = pick_language(locale=invite.locale, country=retailer.country)
    thanks = say_and_hang_up(text(language, "ivr_thanks"), language)
    if invite.answer_id is not None:
        return _twiml(thanks)
    if is_expired(invite):
        return _twiml(say_and_hang_up(text(language, "ivr_no_answer"), language))
    score = parse_keypad(form.get("Digits") or "")
    low, high = SCALE_RANGE[invite.scale]
    if score is None or not low <= score <= high:
        if attempt >= MAX_IVR_ATTEMPTS:
            return _twiml(say_and_hang_up(text(language, "ivr_no_answer"), language))
        return _twiml(
            survey_twiml(
                invite,
                store=retailer.name,
                language=language,
                gather_url=survey_gather_url(settings, retailer.id, invite_id, attempt + 1),
                problem=text(language, "ivr_invalid", low=low, high=high),
            )
        )
    try:
        answered = await answer_invite(
            session, retailer=retailer, invite=invite, score=score, channel="ivr"
        )
        await session.commit()
    except NoAlertRules:
        return _twiml(thanks)
    except IntegrityError:  # Twilio's retry raced the first delivery: one answer
        await session.rollback()
        return _twiml(thanks)
    await apply_answer_effect(
        session,
        client,
        task_queue=settings.task_queue,
        retailer=retailer,
        recorded=answered.recorded,
    )
    return _twiml(thanks)
