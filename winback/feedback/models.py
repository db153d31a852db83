"""Survey answers, the feedback cases they open, and the escalations of any human task."""

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column
from workflows.vocabulary import CaseStatus


class FeedbackAnswer(SQLModel, table=True):
    """Every answer, case or not."""

    __table_args__ = (UniqueConstraint("retailer_id", "idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    idempotency_key: str = Field(max_length=200)
    channel: str = Field(max_length=10)
    scale: str = Field(max_length=10)  # "nps" (0-10) or "csat" (1-5)
    score: int
    comment: str | None = None
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    order_id: str | None = Field(default=None, max_length=200)
    business_unit: str = Field(max_length=60, index=True)
    touchpoint: str | None = Field(default=None, max_length=100)
    answered_at: datetime = utc_column(nullable=False, index=True)
    received_at: datetime = utc_column(nullable=False, default_now=True)
    kind: str = Field(max_length=20)
    severity: str | None = Field(default=None, max_length=10)  # "normal" | "hot" for detractors
    case_id: int | None = Field(default=None, index=True)  # the case it opened or joined
    follow_up_of: int | None = Field(default=None, index=True)  # a follow-up survey's case
    rules_version: int = 0


class FeedbackCase(SQLModel, table=True):
    """The listing and the figures of a case; its workflow (``case-<retailer>-<id>``) decides."""

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    workflow_id: str = Field(max_length=300, unique=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    answer_id: int = Field(index=True)
    business_unit: str = Field(max_length=60, index=True)
    severity: str = Field(max_length=10, index=True)
    status: str = Field(default=CaseStatus.OPEN, max_length=10, index=True)
    stage: str = Field(default="alerting", max_length=20)
    owner: str | None = Field(default=None, max_length=200)
    opened_at: datetime = utc_column(nullable=False, index=True)
    first_contact_at: datetime | None = utc_column()
    contact_attempts: int = 0
    contact_outcome: str | None = Field(default=None, max_length=20)
    root_cause: str | None = Field(default=None, max_length=100, index=True)
    root_cause_notes: str | None = None
    facts: list[str] = json_column(list)
    resolution_code: str | None = Field(default=None, max_length=100)
    action_taken: str | None = None
    won_back: bool | None = None
    close_reason: str | None = Field(default=None, max_length=40)
    closed_at: datetime | None = utc_column()
    follow_up_score: int | None = None
    rules_version: int = 0


class AlertRulesVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    version: int
    spec: dict[str, Any] = json_column()
    created_at: datetime = utc_column(nullable=False, default_now=True)


class SurveyInvite(SQLModel, table=True):
    """One survey Winback asks itself: one signed link, at most one answer (its idempotency
    key is ``survey-<id>``), whether it comes from the page, an SMS reply or the phone's keypad.
    """

    __table_args__ = (UniqueConstraint("retailer_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    key: str = Field(max_length=300)  # the caller's idempotency key: a resend is the same invite
    channel: str = Field(max_length=10)  # how it was sent: "email" | "sms" | "voice" | "link"
    scale: str = Field(max_length=10)  # "nps" (0-10) or "csat" (1-5)
    locale: str | None = Field(default=None, max_length=20)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164: SMS replies
    order_id: str | None = Field(default=None, max_length=200)
    business_unit: str | None = Field(default=None, max_length=60)
    touchpoint: str | None = Field(default=None, max_length=100)
    follow_up_of: int | None = Field(default=None, index=True)  # the case it follows up
    created_at: datetime = utc_column(nullable=False, default_now=True)
    expires_at: datetime = utc_column(nullable=False, index=True)
    answer_id: int | None = Field(default=None, index=True)
    answered_at: datetime | None = utc_column()
