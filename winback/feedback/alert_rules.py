"""Alert rules: which survey answers open a case, how hot, who owns it, and the SLAs.

Versioned like cadences: a case keeps the rules it opened under. ``classify`` applies them to
one answer.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from winback.customers.identity import EMAIL_PATTERN
from winback.customers.phones import normalize_phone
from winback.platform.durations import Duration, format_duration
from workflows.vocabulary import AnswerKind

Scale = Literal["nps", "csat"]
Severity = Literal["normal", "hot"]
SCALE_RANGE: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}
SLUG = r"^[a-z0-9][a-z0-9_\-]{0,59}$"
MAX_WAIT = timedelta(days=90)  # any SLA, retry or follow-up wait


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(_Strict):
    """Someone to alert or escalate to."""

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(
        default=None, max_length=40, description="International format (+...), for hot alerts."
    )

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else normalize_phone(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        """E.164 from any international format: hot alerts are texted to it."""
        return None if value is None else normalize_phone(value)

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if not self.email and not self.phone:
            raise ValueError(f"{self.name}: give an email or a phone to reach them")
        return self


class BusinessUnitRule(_Strict):
    id: str = Field(
        pattern=SLUG, max_length=60, description="As answers name it, e.g. `store-madrid`."
    )
    name: str = Field(min_length=1, max_length=200)
    owner: Person
    escalation: list[Person] = Field(
        default_factory=list,
        max_length=10,
        description="Who an overdue step escalates to, in order.",
    )
    nps_at_most: int | None = Field(default=None, description="Overrides the retailer's.")
    csat_at_most: int | None = None


def _within(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    """A step shorter than ``low`` escalates at once; a timer past ``high`` is a typo."""
    if not low <= value <= high:
        raise ValueError(f"must be between {format_duration(low)} and {format_duration(high)}")
    return value


class CaseSlas(_Strict):
    contact: Duration = Field(default=timedelta(hours=24))
    root_cause: Duration = Field(default=timedelta(days=3))
    resolution: Duration = Field(default=timedelta(days=7))

    @field_validator("contact", "root_cause", "resolution")
    @classmethod
    def _sla(cls, value: timedelta) -> timedelta:
        return _within(value, timedelta(minutes=1), MAX_WAIT)


def _hot_slas() -> CaseSlas:
    return CaseSlas(
        contact=timedelta(hours=2), root_cause=timedelta(days=1), resolution=timedelta(days=3)
    )


class SeveritySlas(_Strict):
    normal: CaseSlas = Field(default_factory=CaseSlas)
    hot: CaseSlas = Field(default_factory=_hot_slas)

    def for_severity(self, severity: str) -> CaseSlas:
        return self.hot if severity == "hot" else self.normal


class PromoterRule(_Strict):
    action: Literal["thank_you", "none"] = "none"
    nps_at_least: int = 9
    csat_at_least: int = 5
    review_url: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _can_match(self) -> Self:
        for scale, value in (("nps", self.nps_at_least), ("csat", self.csat_at_least)):
            low, high = SCALE_RANGE[scale]
            if not low < value <= high:
                raise ValueError(
                    f"{scale}_at_least: {value} can never match usefully; "
                    f"it must be from {low + 1} to {high} on the {low}-{high} scale"
                )
        return self


class FollowUpSurvey(_Strict):
    enabled: bool = True
    delay: Duration = Field(default=timedelta(days=7), description="After the case closes.")
    wait: Duration = Field(default=timedelta(days=14), description="How long to wait for it.")

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: timedelta) -> timedelta:
        return _within(value, timedelta(0), MAX_WAIT)

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: timedelta) -> timedelta:
        return _within(value, timedelta(hours=1), MAX_WAIT)


class AlertRulesIn(_Strict):
    """A retailer's closed-loop rules."""

    nps_at_most: int = Field(default=6, description="NPS answers at or below open a case.")
    csat_at_most: int = Field(default=2, description="CSAT answers at or below open a case.")
    hot_keywords: list[Annotated[str, Field(max_length=100)]] = Field(
        max_length=200,
        default_factory=lambda: ["cancel", "lawyer", "refund", "never again", "abogado"],
        description="A comment with any of these (case-insensitive) makes the case hot.",
    )
    business_units: list[BusinessUnitRule] = Field(min_length=1, max_length=500)
    default_business_unit: str | None = Field(
        default=None, max_length=60, description="For answers that name none."
    )
    slas: SeveritySlas = Field(default_factory=SeveritySlas)
    remind_before_fraction: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="Remind the holder of a case's task this share of its SLA before it is due "
        "(0 for no reminder).",
    )
    contact_attempts: int = Field(default=3, ge=1, le=10)
    retry_after: Duration = Field(
        default=timedelta(hours=4), description="Between unanswered contact attempts."
    )
    root_causes: list[Annotated[str, Field(max_length=60)]] = Field(
        max_length=200,
        default_factory=lambda: [
            "delivery_late",
            "product_defect",
            "wrong_item",
            "staff_attitude",
            "pricing",
            "website_issue",
            "other",
        ],
        min_length=1,
    )
    resolution_codes: list[Annotated[str, Field(max_length=60)]] = Field(
        max_length=200,
        default_factory=lambda: [
            "refund",
            "replacement",
            "discount",
            "apology",
            "explanation",
            "no_action",
        ],
        min_length=1,
    )
    promoters: PromoterRule = Field(default_factory=PromoterRule)
    follow_up: FollowUpSurvey = Field(default_factory=FollowUpSurvey)
    annual_revenue_per_customer: float = Field(default=1000.0, ge=0, le=1e9)
    baseline_intervention_rate: float = Field(
        default=0.01, ge=0, le=1, description="Share of detractors contacted without Winback."
    )

    @field_validator("root_causes", "resolution_codes")
    @classmethod
    def _slugs(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(SLUG, value):
                raise ValueError(f"{value!r}: lowercase letters, digits, '-' and '_' only")
        if len(set(values)) != len(values):
            raise ValueError("has duplicates")
        return values

    @field_validator("retry_after")
    @classmethod
    def _retry_after(cls, value: timedelta) -> timedelta:
        return _within(value, timedelta(minutes=1), MAX_WAIT)

    @field_validator("hot_keywords")
    @classmethod
    def _keywords(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("an empty keyword would match every comment")
        return cleaned

    @model_validator(mode="after")
    def _can_match(self) -> Self:
        """A rule that can never match, or matches what it must not, is refused."""
        ids = [bu.id for bu in self.business_units]
        if len(set(ids)) != len(ids):
            raise ValueError("business_units: ids must be unique")
        if self.default_business_unit is not None and self.default_business_unit not in ids:
            raise ValueError(
                f"default_business_unit: {self.default_business_unit!r} is not one of {ids}"
            )
        _check_thresholds("", self.nps_at_most, self.csat_at_most, self.promoters)
        for i, bu in enumerate(self.business_units):
            _check_thresholds(
                f"business_units[{i}].",
                bu.nps_at_most if bu.nps_at_most is not None else self.nps_at_most,
                bu.csat_at_most if bu.csat_at_most is not None else self.csat_at_most,
                self.promoters,
            )
        return self

    def unit(self, business_unit: str | None) -> BusinessUnitRule | None:
        wanted = business_unit or self.default_business_unit
        return next((bu for bu in self.business_units if bu.id == wanted), None)


def _check_thresholds(where: str, nps: int, csat: int, promoters: PromoterRule) -> None:
    for scale, value in (("nps", nps), ("csat", csat)):
        low, high = SCALE_RANGE[scale]
        if not low <= value < high:
            raise ValueError(
                f"{where}{scale}_at_most: {value} can never match usefully; "
                f"it must be from {low} to {high - 1} on the {low}-{high} scale"
            )
    if promoters.action != "none" and (
        promoters.nps_at_least <= nps or promoters.csat_at_least <= csat
    ):
        raise ValueError(f"{where}promoters: a promoter threshold overlaps the case threshold")


class AlertRulesPublic(AlertRulesIn):
    version: int
    task_queues: dict[str, str] = Field(
        default_factory=dict,
        description="The agent queue each business unit's case tasks go to now: the queue "
        "named after the unit if it exists, else 'default'.",
    )
    warnings: list[str] = Field(
        default_factory=list, description="Rules that work, but maybe not as meant."
    )


@dataclass(frozen=True)
class Classification:
    kind: str  # AnswerKind
    severity: str | None  # "normal" | "hot" for detractors
    unit: BusinessUnitRule


def classify(
    rules: AlertRulesIn, unit: BusinessUnitRule, scale: str, score: int, comment: str | None
) -> Classification:
    """Detractor (opens a case, normal or hot), promoter, or passive."""
    at_most = {
        "nps": unit.nps_at_most if unit.nps_at_most is not None else rules.nps_at_most,
        "csat": unit.csat_at_most if unit.csat_at_most is not None else rules.csat_at_most,
    }[scale]
    text = (comment or "").lower()
    hot = any(keyword in text for keyword in rules.hot_keywords)
    if score <= at_most or hot:
        return Classification(AnswerKind.DETRACTOR, "hot" if hot else "normal", unit)
    at_least = {"nps": rules.promoters.nps_at_least, "csat": rules.promoters.csat_at_least}[scale]
    kind = AnswerKind.PROMOTER if score >= at_least else AnswerKind.PASSIVE
    return Classification(kind, None, unit)


__all__ = ["AlertRulesIn", "AlertRulesPublic", "Classification", "classify", "format_duration"]
