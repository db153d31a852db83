"""Data types of the feedback-case workflow. Standard library only (sandbox)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Contact:
    name: str
    email: str | None = None
    phone: str | None = None


@dataclass
class CaseSlaSpec:
    contact_seconds: int
    root_cause_seconds: int
    resolution_seconds: int


@dataclass
class CaseInput:
    retailer_id: str
    case_id: int
    answer_id: int
    business_unit: str
    severity: str  # "normal" | "hot"
    owner: Contact
    escalation_chain: list[Contact]
    normal_slas: CaseSlaSpec
    hot_slas: CaseSlaSpec
    root_causes: list[str]
    resolution_codes: list[str]
    contact_attempts: int = 3
    remind_before_fraction: float = 0.25
    retry_after_seconds: int = 4 * 3600
    follow_up_delay_seconds: int | None = None  # None: no follow-up survey
    follow_up_wait_seconds: int = 14 * 86400
    scale: str = "nps"
    score: int = 0
    comment: str | None = None
    customer_name: str | None = None


@dataclass
class JoinedFeedback:
    """Another answer from the same customer while the case is open."""

    answer_id: int
    scale: str
    score: int
    comment: str | None = None
    hot: bool = False


@dataclass
class FollowUpAnswer:
    answer_id: int
    scale: str
    score: int


@dataclass
class CaseState:
    stage: str
    severity: str
    contact_attempts: int = 0
    joined_answers: list[int] = field(default_factory=list)
    root_cause: str | None = None
    resolution_code: str | None = None
    won_back: bool | None = None
    close_reason: str | None = None
    follow_up_score: int | None = None


@dataclass
class CaseResult:
    close_reason: str
    won_back: bool | None = None
    follow_up_score: int | None = None


# --- activity inputs ---------------------------------------------------------------------------


@dataclass
class AlertOwnerInput:
    retailer_id: str
    case_id: int
    workflow_id: str
    owner: Contact
    severity: str
    summary: str
    at: datetime
    key: str = "alert"


@dataclass
class CaseChange:
    """Fields of the case's row to set (the listing and the reports read them)."""

    retailer_id: str
    case_id: int
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class FollowUpSurveyInput:
    retailer_id: str
    case_id: int
    workflow_id: str
    at: datetime


@dataclass
class ThanksInput:
    retailer_id: str
    answer_id: int
    review_url: str | None = None
    at: datetime | None = None


@dataclass
class SurveyInput:
    """Send survey invite ``invite_id`` once (by email, SMS or an automated call)."""

    retailer_id: str
    invite_id: int
    at: datetime | None = None
    # Set by workflows that sleep through the quiet hours when the send says ``QuietHours``;
    # an attempt scheduled before that existed (False) sends at once, as it always did.
    wait_out_quiet_hours: bool = False
