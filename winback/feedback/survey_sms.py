"""SMS replies to a survey text: "9", "10 gracias" or "diez" from a number Winback texted a
survey to is that survey's answer (the whole text its comment when there is more than the score).

The inbound SMS webhook asks this first; STOP, START, HELP and any text that does not start with
a score are not survey answers and go on to the usual handling.
"""

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from winback.feedback.answers import NoAlertRules
from winback.feedback.survey_texts import pick_language, text
from winback.feedback.surveys import (
    ScoreOutOfRange,
    answer_invite,
    open_sms_invite,
    parse_score_reply,
)
from winback.feedback.workflow_sync import apply_answer_effect
from winback.platform.settings import Settings
from winback.retailers.models import Retailer


async def answer_by_sms(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    retailer: Retailer,
    sender: str,
    body: str,
) -> str | None:
    """A text that starts with a score, from a number Winback texted a survey to: recorded as
    that survey's answer (the rest of the text is its comment). Returns the reply to text back,
    or None when the text is not a survey answer (the caller handles it as any other text)."""
    score = parse_score_reply(body)
    if score is None or not sender:
        return None
    invite = await open_sms_invite(session, retailer_id=retailer.id, phone=sender)
    if invite is None:
        return None
    language = pick_language(locale=invite.locale, country=retailer.country)
    try:
        answered = await answer_invite(
            session,
            retailer=retailer,
            invite=invite,
            score=score,
            comment=body.strip() if len(body.split()) > 1 else None,
            channel="sms",
        )
        await session.commit()
    except IntegrityError:  # the same text delivered twice at once: one answer
        await session.rollback()
        return text(language, "sms_already")
    except ScoreOutOfRange as err:
        return text(language, "sms_range", low=err.low, high=err.high)
    except NoAlertRules:
        return None
    await apply_answer_effect(
        session,
        client,
        task_queue=settings.task_queue,
        retailer=retailer,
        recorded=answered.recorded,
    )
    if answered.already:
        return text(language, "sms_already")
    return text(language, "sms_thanks", score=score)
