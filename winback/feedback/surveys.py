"""Surveys Winback asks itself: an invite per customer and survey, answered once, from the
hosted page (its signed link), an SMS reply ("9", "10 gracias") or the keypad of a call.

Every answer goes through ``record_answer`` like an answer posted to ``/v1/feedback``, with the
idempotency key ``survey-<invite id>``: the same link, text or call answering twice is one
answer, and alert rules, cases and follow-up links apply as they do to any answer.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from twilio.twiml.voice_response import VoiceResponse

from winback.customers.identity import (
    ConsentIn,
    CustomerIn,
    normalize_national_phone,
    upsert_customer,
)
from winback.customers.models import Customer
from winback.feedback.alert_rules import SCALE_RANGE
from winback.feedback.alert_rules_store import current_rules
from winback.feedback.answers import FeedbackIn, NoAlertRules, RecordedAnswer, record_answer
from winback.feedback.models import FeedbackAnswer, FeedbackCase, SurveyInvite
from winback.feedback.survey_texts import VOICE_LANGUAGE, text
from winback.platform.clock import as_utc, utcnow
from winback.platform.errors import InputFieldError
from winback.platform.settings import Settings
from winback.retailers.models import Retailer

SurveyChannel = Literal["email", "sms", "voice", "link"]
# The channel an answer is counted under: where the survey reached the customer.
ANSWER_CHANNEL = {"email": "email", "sms": "sms", "voice": "ivr", "link": "web"}
MAX_IVR_ATTEMPTS = 3


class SurveyIn(BaseModel):
    """Ask a customer for an NPS or CSAT answer: Winback sends the survey and records the reply."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(
        min_length=1, max_length=200, description="A resend is the same survey, sent once."
    )
    channel: SurveyChannel = Field(
        description="email or sms: a message with the signed link (an SMS can also be answered "
        "by replying with the score); voice: an automated call that asks for the score on the "
        "keypad; link: nothing is sent, the answer carries the link for you to send."
    )
    scale: Literal["nps", "csat"] = Field(default="nps", description="NPS 0-10 or CSAT 1-5.")
    customer: CustomerIn | None = Field(default=None, description="Required unless channel=link.")
    consent: ConsentIn | None = None
    locale: str | None = Field(
        default=None, max_length=20, description="en or es; default the customer's locale."
    )
    order_id: str | None = Field(default=None, max_length=200)
    business_unit: str | None = Field(default=None, max_length=60)
    touchpoint: str | None = Field(default=None, max_length=100)
    expires_in_days: int | None = Field(
        default=None, ge=1, le=365, description="Default WINBACK_SURVEY_LINK_DAYS (30)."
    )


@dataclass
class CreatedInvite:
    invite: SurveyInvite
    created: bool


async def invite_survey(
    session: AsyncSession, *, retailer: Retailer, body: SurveyIn, settings: Settings
) -> CreatedInvite:
    """Stores the invite (or finds the one made with the same idempotency key). Refused
    (``InputFieldError``, a 422) when it could never be answered or sent: no alert rules, an
    unknown business unit, no address or no consent for the channel."""
    existing = await _invite_by_key(session, retailer.id, body.idempotency_key)
    if existing is not None:
        return CreatedInvite(existing, False)
    rules = await current_rules(session, retailer_id=retailer.id)
    if rules is None:
        raise NoAlertRules("set the retailer's alert rules (PUT /v1/alert-rules) first")
    if rules.unit(body.business_unit) is None:
        known = ", ".join(bu.id for bu in rules.business_units)
        what = repr(body.business_unit) if body.business_unit else "none (and no default)"
        raise InputFieldError("business_unit", f"unknown business unit {what}; known: {known}")
    customer = None
    if body.customer is not None:
        normalize_national_phone(body.customer, retailer.country)
        customer = await upsert_customer(
            session,
            retailer_id=retailer.id,
            given=body.customer,
            consent=body.consent,
            consent_source="survey",
        )
        await session.flush()
    if body.channel != "link":
        if customer is None:
            raise InputFieldError("customer", f"a {body.channel} survey needs the customer")
        if not customer.address_for(body.channel):
            what = "email" if body.channel == "email" else "phone"
            raise InputFieldError(f"customer.{what}", f"a {body.channel} survey needs one")
        if not customer.consents_to(body.channel):
            raise InputFieldError(
                f"consent.{body.channel}", f"the customer has not agreed to {body.channel}"
            )
    invite = await create_invite(
        session,
        retailer_id=retailer.id,
        key=body.idempotency_key,
        channel=body.channel,
        scale=body.scale,
        customer=customer,
        locale=body.locale,
        days=body.expires_in_days or settings.survey_link_days,
        order_id=body.order_id,
        business_unit=body.business_unit,
        touchpoint=body.touchpoint,
    )
    return CreatedInvite(invite, True)


async def create_invite(
    session: AsyncSession,
    *,
    retailer_id: str,
    key: str,
    channel: str,
    scale: str,
    customer: Customer | None,
    days: int,
    locale: str | None = None,
    order_id: str | None = None,
    business_unit: str | None = None,
    touchpoint: str | None = None,
    follow_up_of: int | None = None,
) -> SurveyInvite:
    """The invite for ``key``, made once (a retried activity finds the first one)."""
    existing = await _invite_by_key(session, retailer_id, key)
    if existing is not None:
        return existing
    now = utcnow()
    invite = SurveyInvite(
        retailer_id=retailer_id,
        key=key,
        channel=channel,
        scale=scale,
        locale=locale or (customer.locale if customer else None),
        customer_id=customer.id if customer else None,
        phone=customer.phone if customer is not None and channel in ("sms", "voice") else None,
        order_id=order_id,
        business_unit=business_unit,
        touchpoint=touchpoint,
        follow_up_of=follow_up_of,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(invite)
    await session.flush()
    return invite


async def _invite_by_key(session: AsyncSession, retailer_id: str, key: str) -> SurveyInvite | None:
    query = select(SurveyInvite).where(
        SurveyInvite.retailer_id == retailer_id, SurveyInvite.key == key
    )
    return (await session.exec(query)).first()


def is_expired(invite: SurveyInvite, now: datetime | None = None) -> bool:
    return as_utc(invite.expires_at) <= (now or utcnow())


@dataclass
class SurveyAnswer:
    """What answering did: ``recorded`` is for ``apply_answer_effect`` (also on a repeat, so a
    failed call to Temporal is re-driven); ``already`` says the invite had its answer."""

    recorded: RecordedAnswer
    already: bool


class ScoreOutOfRange(InputFieldError):
    def __init__(self, scale: str) -> None:
        low, high = SCALE_RANGE[scale]
        super().__init__("score", f"choose a score from {low} to {high}")
        self.low, self.high = low, high


async def answer_invite(
    session: AsyncSession,
    *,
    retailer: Retailer,
    invite: SurveyInvite,
    score: int,
    comment: str | None = None,
    channel: str | None = None,
) -> SurveyAnswer:
    """Records the invite's one answer (a later one returns the first, ``already``). The caller
    commits, then calls ``apply_answer_effect``; an expired invite is the caller's to refuse."""
    assert invite.id is not None
    if invite.answer_id is not None:
        first = await session.get(FeedbackAnswer, invite.answer_id)
        if first is not None:
            score, comment = first.score, first.comment
    else:
        low, high = SCALE_RANGE[invite.scale]
        if not low <= score <= high:
            raise ScoreOutOfRange(invite.scale)
    customer = await session.get(Customer, invite.customer_id) if invite.customer_id else None
    answer = FeedbackIn(
        idempotency_key=f"survey-{invite.id}",
        channel=channel or ANSWER_CHANNEL.get(invite.channel, "web"),  # type: ignore[arg-type]
        scale=invite.scale,  # type: ignore[arg-type]
        score=score,
        comment=(comment or "").strip()[:5000] or None,
        order_id=invite.order_id,
        business_unit=invite.business_unit,
        touchpoint=invite.touchpoint or "winback_survey",
        follow_up_of=invite.follow_up_of,
    )
    recorded = await record_answer(
        session, retailer=retailer, answer=answer, known_customer=customer
    )
    if invite.answer_id is None:
        invite.answer_id = recorded.answer.id
        invite.answered_at = recorded.answer.answered_at
        session.add(invite)
        await session.flush()
    return SurveyAnswer(recorded, already=recorded.duplicate)


# --- the messages that carry the link -----------------------------------------------------------


def survey_message(invite: SurveyInvite, *, store: str, language: str, url: str) -> tuple[str, str]:
    """The subject and text of the survey's email or SMS, in the customer's language."""
    intro = (
        text(language, "follow_up_intro", case=invite.follow_up_of) if invite.follow_up_of else ""
    )
    suffix = "_csat" if invite.scale == "csat" else ""
    key = ("sms_body" if invite.channel == "sms" else "email_body") + suffix
    return text(language, "email_subject"), text(language, key, intro=intro, store=store, url=url)


# --- SMS replies ------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "zero": 0, "cero": 0, "one": 1, "uno": 1, "una": 1, "un": 1, "two": 2, "dos": 2,
    "three": 3, "tres": 3, "four": 4, "cuatro": 4, "five": 5, "cinco": 5, "six": 6, "seis": 6,
    "seven": 7, "siete": 7, "eight": 8, "ocho": 8, "nine": 9, "nueve": 9, "ten": 10, "diez": 10,
}  # fmt: skip
_LEADING_NUMBER = re.compile(r"^(\d{1,3})(?!\d)(?:\s*/\s*(?:10|5)(?!\d))?(?![.,]\d)")
_FIRST_WORD = re.compile(r"^([a-z]+)(?![a-z])")


def parse_score_reply(body: str) -> int | None:
    """The score an SMS reply starts with: digits ("9", "10 gracias", "9/10", "8!") or a number
    word in English or Spanish ("diez", "Nueve"). None when it does not start with one ("STOP",
    "thanks", "+34 612...", "4.5"). Out-of-range numbers are returned: the caller says the range.
    """
    cleaned = unicodedata.normalize("NFKD", body.strip().lower())
    cleaned = "".join(c for c in cleaned if not unicodedata.combining(c))
    match = _LEADING_NUMBER.match(cleaned)
    if match:
        return int(match.group(1))
    word = _FIRST_WORD.match(cleaned)
    if word and word.group(1) in _NUMBER_WORDS:
        return _NUMBER_WORDS[word.group(1)]
    return None


async def open_sms_invite(
    session: AsyncSession, *, retailer_id: str, phone: str, now: datetime | None = None
) -> SurveyInvite | None:
    """The latest unexpired survey this retailer texted to ``phone`` (answered or not: a
    repeated reply must find the same invite and count once)."""
    query = (
        select(SurveyInvite)
        .where(
            SurveyInvite.retailer_id == retailer_id,
            SurveyInvite.phone == phone,
            SurveyInvite.channel == "sms",
            col(SurveyInvite.expires_at) > (now or utcnow()),
        )
        .order_by(col(SurveyInvite.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


# --- the IVR call -----------------------------------------------------------------------------


def survey_gather_url(settings: Settings, retailer_id: str, invite_id: int, attempt: int) -> str:
    """Where Twilio posts the keys pressed (it signs the whole URL, query included)."""
    base = settings.public_base_url.rstrip("/")
    return (
        f"{base}/v1/webhooks/twilio/{retailer_id}/survey-gather"
        f"?invite={invite_id}&attempt={attempt}"
    )


def survey_twiml(
    invite: SurveyInvite,
    *,
    store: str,
    language: str,
    gather_url: str,
    problem: str | None = None,
) -> str:
    """Asks the question and gathers up to two keys, ended by ``#`` or a pause (so "10#",
    "9#" and a lone "9" all work); no key at all: a goodbye."""
    voice = VOICE_LANGUAGE.get(language, "en-US")
    response = VoiceResponse()
    gather = response.gather(
        num_digits=2,
        finish_on_key="#",
        timeout=6,
        action=gather_url,
        method="POST",
        action_on_empty_result=False,
    )
    if problem:
        gather.say(problem, language=voice)
    gather.say(text(language, f"ivr_prompt_{invite.scale}", store=store), language=voice)
    response.say(text(language, "ivr_no_answer"), language=voice)
    response.hangup()
    return str(response)


def parse_keypad(digits: str) -> int | None:
    """The keys Twilio reports (``Digits``), without the ``#``; None if not a number."""
    cleaned = digits.strip().rstrip("#")
    return int(cleaned) if cleaned.isdigit() and len(cleaned) <= 2 else None


def say_and_hang_up(message: str, language: str) -> str:
    response = VoiceResponse()
    response.say(message, language=VOICE_LANGUAGE.get(language, "en-US"))
    response.hangup()
    return str(response)


async def follow_up_case(session: AsyncSession, invite: SurveyInvite) -> FeedbackCase | None:
    return await session.get(FeedbackCase, invite.follow_up_of) if invite.follow_up_of else None
