"""The hosted survey page, ``/s/<signed token>``: no sign-in, the signed link is the authority.

GET shows the question (NPS 0-10 or CSAT 1-5 as a labelled radio group, and a comment) in the
customer's language, or "thank you" once the link has its answer; it never changes anything
(mail scanners prefetch links). POST records the answer through the same path as
``POST /v1/feedback`` (idempotency key ``survey-<invite>``: one answer per link, alert rules,
the case it opens or follows up), then redirects to the thank-you (post/redirect/get).
The page shows the store's name and the question only: no personal data.
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep, SettingsDep, TemporalClientDep
from api.rate_limits import rate_limit
from winback.feedback.alert_rules import SCALE_RANGE
from winback.feedback.answers import NoAlertRules
from winback.feedback.models import SurveyInvite
from winback.feedback.survey_links import (
    ExpiredSurveyLink,
    InvalidSurveyLink,
    verify_survey_token,
)
from winback.feedback.survey_texts import TEXTS, accept_language, pick_language
from winback.feedback.surveys import ScoreOutOfRange, answer_invite, is_expired
from winback.feedback.workflow_sync import apply_answer_effect
from winback.retailers.models import Retailer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
templates = Jinja2Templates(directory=TEMPLATES)

router = APIRouter(
    prefix="/s",
    tags=["surveys"],
    include_in_schema=False,
    dependencies=[Depends(rate_limit("survey"))],
)

Token = Annotated[str, PathParam(max_length=400, description="The signed token from the link.")]
Lang = Annotated[str | None, Query(max_length=10, description="en or es")]


def _page(
    request: Request,
    name: str,
    language: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    t = TEXTS[language]
    return templates.TemplateResponse(
        request,
        f"surveys/{name}",
        {"t": t, "lang": language, "languages": list(TEXTS), **context},
        status_code=status_code,
    )


async def _open(
    request: Request, session: SessionDep, settings: SettingsDep, token: str, lang: str | None
) -> tuple[SurveyInvite, Retailer, str] | HTMLResponse:
    """The link's invite and store, or the page that says why it cannot be answered."""
    browser = accept_language(request.headers.get("accept-language"))
    try:
        target = verify_survey_token(settings, token)
    except ExpiredSurveyLink:
        language = pick_language(asked=lang, browser=browser)
        return _page(request, "closed.html", language, status.HTTP_410_GONE, why="expired")
    except InvalidSurveyLink:
        language = pick_language(asked=lang, browser=browser)
        return _page(request, "closed.html", language, status.HTTP_404_NOT_FOUND, why="invalid")
    invite = await session.get(SurveyInvite, target.invite_id)
    retailer = await session.get(Retailer, target.retailer_id)
    if invite is None or retailer is None or invite.retailer_id != retailer.id:
        language = pick_language(asked=lang, browser=browser)
        return _page(request, "closed.html", language, status.HTTP_404_NOT_FOUND, why="invalid")
    language = pick_language(
        asked=lang, locale=invite.locale, browser=browser, country=retailer.country
    )
    if invite.answer_id is None and is_expired(invite):
        return _page(request, "closed.html", language, status.HTTP_410_GONE, why="expired")
    return invite, retailer, language


def _form(
    request: Request,
    invite: SurveyInvite,
    retailer: Retailer,
    language: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    score: int | None = None,
    comment: str = "",
) -> HTMLResponse:
    low, high = SCALE_RANGE[invite.scale]
    t = TEXTS[language]
    return _page(
        request,
        "survey.html",
        language,
        status_code,
        store=retailer.name,
        question=t[f"question_{invite.scale}"].format(store=retailer.name),
        low_label=t[f"low_{invite.scale}"],
        high_label=t[f"high_{invite.scale}"],
        scores=list(range(low, high + 1)),
        scale=invite.scale,
        error=error,
        chosen=score,
        comment=comment,
    )


@router.get("/{token}", response_class=HTMLResponse)
async def survey_page(
    token: Token,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lang: Lang = None,
    thanks: Annotated[bool, Query()] = False,
) -> Response:
    opened = await _open(request, session, settings, token, lang)
    if isinstance(opened, HTMLResponse):
        return opened
    invite, retailer, language = opened
    if invite.answer_id is not None:
        return _page(request, "thanks.html", language, store=retailer.name, just_now=thanks)
    return _form(request, invite, retailer, language)


@router.post("/{token}", response_class=HTMLResponse)
async def answer_survey(
    token: Token,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
    score: Annotated[str | None, Form(max_length=3)] = None,
    comment: Annotated[str, Form(max_length=5000)] = "",
    lang: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    opened = await _open(request, session, settings, token, lang)
    if isinstance(opened, HTMLResponse):
        return opened
    invite, retailer, language = opened
    done = request.url.path + f"?lang={language}&thanks=1"
    if invite.answer_id is not None:  # answered before: nothing more is recorded
        return RedirectResponse(done, status.HTTP_303_SEE_OTHER)
    t = TEXTS[language]
    value = int(score) if score is not None and score.strip().isdigit() else None
    if value is None:
        return _form(
            request, invite, retailer, language, status_code=422, error=t["choose"], comment=comment
        )
    try:
        answered = await answer_invite(
            session, retailer=retailer, invite=invite, score=value, comment=comment
        )
        await session.commit()
    except IntegrityError:  # a concurrent submit of the same link won: one answer
        await session.rollback()
        return RedirectResponse(done, status.HTTP_303_SEE_OTHER)
    except ScoreOutOfRange:
        return _form(
            request, invite, retailer, language, status_code=422, error=t["choose"], comment=comment
        )
    except NoAlertRules:  # the retailer removed its rules: nothing can classify the answer
        return _page(request, "closed.html", language, status.HTTP_410_GONE, why="expired")
    await apply_answer_effect(
        session,
        client,
        task_queue=settings.task_queue,
        retailer=retailer,
        recorded=answered.recorded,
    )
    return RedirectResponse(done, status.HTTP_303_SEE_OTHER)
