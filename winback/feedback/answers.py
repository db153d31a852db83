"""Survey answers in: stored always, classified by the retailer's alert rules, and turned into a
case (a new one, or the customer's open one), a promoter's thank-you, or a follow-up answer
linked back to its case.

Like cart events, the answer is committed first and Temporal is told after; ``pending_effect``
says what is still to be told, so a resend of the same idempotency key re-drives a failed call.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.customers.identity import (
    ConsentIn,
    CustomerIn,
    normalize_national_phone,
    upsert_customer,
)
from winback.customers.models import Customer
from winback.feedback.alert_rules import SCALE_RANGE, AlertRulesPublic, classify
from winback.feedback.alert_rules_store import current_rules
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.platform.clock import as_utc, utcnow
from winback.platform.errors import InputFieldError
from winback.retailers.models import Retailer
from workflows.vocabulary import AnswerKind, CaseStatus

Channel = Literal["web", "email", "sms", "ivr", "app"]


class FeedbackIn(BaseModel):
    """One survey answer, from any channel."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=200, description="Resends are ignored.")
    channel: Channel
    scale: Literal["nps", "csat"] = Field(description="NPS 0-10 or CSAT 1-5.")
    score: int
    comment: str | None = Field(default=None, max_length=5000)
    customer: CustomerIn | None = None
    consent: ConsentIn | None = None
    order_id: str | None = Field(default=None, max_length=200)
    business_unit: str | None = Field(
        default=None,
        max_length=60,
        description="Store or business unit; the rules' default if unset.",
    )
    touchpoint: str | None = Field(default=None, max_length=100)
    answered_at: datetime | None = Field(default=None, description="Defaults to the time received.")
    follow_up_of: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The case whose follow-up survey this answers.",
    )

    @field_validator("score")
    @classmethod
    def _score_in_scale(cls, score: int, info: ValidationInfo) -> int:
        """Checked on the field, so the error names `score` (``scale`` is validated first)."""
        scale = info.data.get("scale")
        if scale is None:
            return score  # the scale itself is wrong: that error says so
        low, high = SCALE_RANGE[scale]
        if not low <= score <= high:
            raise ValueError(f"score {score} is outside the {scale.upper()} scale ({low}-{high})")
        return score

    @field_validator("answered_at")
    @classmethod
    def _not_in_future(cls, answered_at: datetime | None) -> datetime | None:
        if answered_at is None:
            return None
        try:
            answered_at = as_utc(answered_at)
        except OverflowError:  # year 1 or 9999 with an offset
            raise ValueError("'answered_at' is out of range") from None
        if answered_at > utcnow() + timedelta(minutes=5):
            raise ValueError("'answered_at' is in the future")
        return answered_at


class Effect:
    OPENED_CASE = "opened_case"
    JOINED_CASE = "joined_case"
    FOLLOW_UP_LINKED = "follow_up_linked"
    THANKED = "thanked"
    NONE = "none"


@dataclass
class RecordedAnswer:
    answer: FeedbackAnswer
    duplicate: bool
    effect: str
    case: FeedbackCase | None
    rules: AlertRulesPublic | None


class NoAlertRules(ValueError):
    """The retailer has set no alert rules yet: answers cannot be classified."""


async def record_answer(
    session: AsyncSession,
    *,
    retailer: Retailer,
    answer: FeedbackIn,
    known_customer: Customer | None = None,
) -> RecordedAnswer:
    """Stores the answer and decides its effect. The caller commits, then tells Temporal.

    ``known_customer``: the customer a survey Winback sent was for (its signed link, the
    number it texted or called), so an answer that names no one is still theirs."""
    rules = await current_rules(session, retailer_id=retailer.id)
    existing = (
        await session.exec(
            select(FeedbackAnswer).where(
                FeedbackAnswer.retailer_id == retailer.id,
                FeedbackAnswer.idempotency_key == answer.idempotency_key,
            )
        )
    ).first()
    if existing is not None:
        case = await session.get(FeedbackCase, existing.case_id) if existing.case_id else None
        return RecordedAnswer(existing, True, _effect_of(existing, case, rules), case, rules)
    if rules is None:
        raise NoAlertRules("set the retailer's alert rules (PUT /v1/alert-rules) first")
    unit = rules.unit(answer.business_unit)
    if unit is None:
        known = ", ".join(bu.id for bu in rules.business_units)
        what = repr(answer.business_unit) if answer.business_unit else "none (and no default)"
        raise InputFieldError("business_unit", f"unknown business unit {what}; known: {known}")

    follow_up_case = None
    if answer.follow_up_of is not None:
        follow_up_case = await session.get(FeedbackCase, answer.follow_up_of)
        if follow_up_case is None or follow_up_case.retailer_id != retailer.id:
            raise InputFieldError("follow_up_of", f"no case {answer.follow_up_of}")
    normalize_national_phone(answer.customer, retailer.country)
    customer = known_customer
    if answer.customer is not None:
        customer = await upsert_customer(
            session,
            retailer_id=retailer.id,
            given=answer.customer,
            consent=answer.consent,
            consent_source="feedback",
            existing=known_customer,
        )

    found = classify(rules, unit, answer.scale, answer.score, answer.comment)
    row = FeedbackAnswer(
        retailer_id=retailer.id,
        idempotency_key=answer.idempotency_key,
        channel=answer.channel,
        scale=answer.scale,
        score=answer.score,
        comment=answer.comment,
        customer_id=customer.id if customer else None,
        order_id=answer.order_id,
        business_unit=unit.id,
        touchpoint=answer.touchpoint,
        answered_at=answer.answered_at or utcnow(),
        kind=found.kind,
        severity=found.severity,
        follow_up_of=answer.follow_up_of,
        rules_version=rules.version,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None

    if follow_up_case is not None:
        row.case_id = follow_up_case.id
        return RecordedAnswer(row, False, Effect.FOLLOW_UP_LINKED, follow_up_case, rules)
    if found.kind != AnswerKind.DETRACTOR:
        thanked = found.kind == AnswerKind.PROMOTER and rules.promoters.action == "thank_you"
        return RecordedAnswer(row, False, Effect.THANKED if thanked else Effect.NONE, None, rules)

    open_case = None
    if customer is not None:
        open_case = (
            await session.exec(
                select(FeedbackCase)
                .where(
                    FeedbackCase.retailer_id == retailer.id,
                    FeedbackCase.customer_id == customer.id,
                    FeedbackCase.status == CaseStatus.OPEN,
                )
                .order_by(col(FeedbackCase.id).desc())
            )
        ).first()
    if open_case is not None:
        row.case_id = open_case.id
        session.add(row)
        return RecordedAnswer(row, False, Effect.JOINED_CASE, open_case, rules)

    case = FeedbackCase(
        retailer_id=retailer.id,
        workflow_id=f"pending-{retailer.id}-{row.id}",
        customer_id=customer.id if customer else None,
        answer_id=row.id,
        business_unit=unit.id,
        severity=found.severity or "normal",
        owner=unit.owner.name,
        opened_at=row.answered_at,
        rules_version=rules.version,
    )
    session.add(case)
    await session.flush()
    case.workflow_id = f"case-{retailer.id}-{case.id}"
    row.case_id = case.id
    session.add_all([case, row])
    return RecordedAnswer(row, False, Effect.OPENED_CASE, case, rules)


def _effect_of(
    answer: FeedbackAnswer, case: FeedbackCase | None, rules: AlertRulesPublic | None
) -> str:
    if answer.follow_up_of is not None:
        return Effect.FOLLOW_UP_LINKED
    if case is not None:
        return Effect.OPENED_CASE if case.answer_id == answer.id else Effect.JOINED_CASE
    thanks = rules is not None and rules.promoters.action == "thank_you"
    return Effect.THANKED if answer.kind == AnswerKind.PROMOTER and thanks else Effect.NONE
