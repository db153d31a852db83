"""Cadences: what a retailer configures, how it is validated, and the brief's default journey.

A cadence is stored as a new version on every change; a cart's workflow gets the version that was
current when it started, as plain dataclasses (``to_workflow_spec``), and keeps it to the end.
"""

from datetime import time, timedelta
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from winback.platform.durations import Duration, format_duration
from winback.tasks.agent_models import check_skills
from workflows.carts.types import CadenceSpec, GuardSpec, StepSpec
from workflows.vocabulary import Channel

ChannelName = Channel
DEFAULT_TEMPLATES: dict[str, str] = {
    "onsite": "onsite_help",
    "email": "cart_reminder",
    "sms": "cart_sms",
    "voice": "cart_voice",
}
OfferKind = Literal["chat", "callback"]
ALL_OFFERS: tuple[OfferKind, ...] = ("chat", "callback")
FIRST_EMAIL_LIMIT = timedelta(hours=24)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepConditions(_Strict):
    min_cart_value: float | None = Field(default=None, ge=0, description="Send only at or above.")
    max_cart_value: float | None = Field(default=None, ge=0, description="Send only below.")
    unless: Literal["email_opened", "email_clicked"] | None = Field(
        default=None, description="Skip if an earlier email of this cart was opened/clicked."
    )

    @model_validator(mode="after")
    def _range(self) -> Self:
        low, high = self.min_cart_value, self.max_cart_value
        if low is not None and high is not None and low >= high:
            raise ValueError("min_cart_value must be below max_cart_value")
        return self


class Discount(_Strict):
    code: str | None = Field(default=None, min_length=1, max_length=100, description="Fixed code.")
    pool: str | None = Field(
        default=None, min_length=1, max_length=100, description="Draw a unique code from a pool."
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.code is None) == (self.pool is None):
            raise ValueError("give exactly one of 'code' or 'pool'")
        return self


class CadenceStepIn(_Strict):
    channel: ChannelName
    delay: Duration = Field(
        default=timedelta(0), description="After abandonment. Ignored for `onsite`."
    )
    template: str | None = Field(
        default=None, max_length=100, description="Template name; the channel's default if unset."
    )
    conditions: StepConditions = Field(default_factory=StepConditions)
    discount: Discount | None = None
    offer: list[OfferKind] = Field(
        default_factory=lambda: list(ALL_OFFERS),
        max_length=2,
        description="On-site: what help to offer.",
    )
    sla: Duration | None = Field(
        default=None,
        description="agent_call: time to make the call (default 4h); onsite: time to call back "
        "a shopper who asked for it (default 15m).",
    )
    remind_before: Duration | None = Field(
        default=None,
        description="agent_call / onsite callback: remind the holder this long before the task "
        "is due (default a quarter of the SLA; 0s for no reminder).",
    )
    skills: list[Annotated[str, Field(max_length=80)]] = Field(
        default_factory=list,
        max_length=50,
        description="agent_call: skills the task needs besides the cart's categories and the "
        "shopper's language, e.g. 'lang:es'.",
    )
    queue: str | None = Field(
        default=None, max_length=60, description="agent_call: a fixed queue, skipping routing."
    )

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return check_skills(value)

    @field_validator("sla")
    @classmethod
    def _sla(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(minutes=1) <= value <= timedelta(days=7):
            raise ValueError("must be between 1m and 7d")
        return value


# A wall-clock time in the recipient's zone, "HH:MM" both ways. (JSON Schema's `time` format
# needs a UTC offset, which a local clock time does not have: the document says what we return.)
LocalTime = Annotated[
    time,
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "maxLength": 8}
    ),
]


class QuietHours(_Strict):
    start: LocalTime = Field(default=time(21, 0), description='Local time, e.g. "21:00".')
    end: LocalTime = Field(default=time(8, 0), description='Local time, e.g. "08:00".')


class FrequencyCap(_Strict):
    max_messages: int = Field(default=2, ge=1, le=100)
    per: Duration = timedelta(hours=24)


MAX_HOLDOUT_PERCENT = 50.0
MAX_ATTRIBUTION_WINDOW = timedelta(days=60)


class AttributionWindows(_Strict):
    """How long after a touch on each channel an order is still credited to it. A channel left
    unset uses the cadence's ``attribution_window`` (7 days unless changed)."""

    onsite: Duration | None = None
    email: Duration | None = None
    sms: Duration | None = None
    voice: Duration | None = None
    agent_call: Duration | None = None

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(minutes=1) <= value <= MAX_ATTRIBUTION_WINDOW:
            raise ValueError("must be between 1m and 60d")
        return value


class CadenceIn(_Strict):
    """A retailer's cart-recovery journey."""

    abandon_after: Duration = Field(default=timedelta(minutes=30))
    expire_after: Duration = Field(default=timedelta(days=7))
    attribution_window: Duration = Field(
        default=timedelta(days=7), description="For every channel not in `attribution_windows`."
    )
    attribution_windows: AttributionWindows = Field(
        default_factory=AttributionWindows,
        description='Per channel, e.g. {"email": "3d", "sms": "1d"}; unset channels use '
        "`attribution_window`.",
    )
    holdout_percent: float = Field(
        default=0.0,
        ge=0,
        le=MAX_HOLDOUT_PERCENT,
        description="Share of carts (sticky per shopper) that get no Winback touch at all, to "
        "measure true incremental lift. Precision 0.01; 0 turns the holdout off.",
    )
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    frequency_cap: FrequencyCap | None = Field(default_factory=FrequencyCap)
    steps: list[CadenceStepIn] = Field(min_length=1, max_length=20)

    @field_validator("abandon_after")
    @classmethod
    def _abandon(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=10) <= value <= timedelta(days=1):
            raise ValueError("must be between 10s and 1d")
        return value

    def window_for(self, channel: str) -> timedelta:
        """The attribution window of a touch on ``channel``."""
        chosen: timedelta | None = getattr(self.attribution_windows, channel, None)
        return chosen if chosen is not None else self.attribution_window

    @field_validator("expire_after")
    @classmethod
    def _expire(cls, value: timedelta) -> timedelta:
        if not timedelta(hours=1) <= value <= timedelta(days=60):
            raise ValueError("must be between 1h and 60d")
        return value

    @model_validator(mode="after")
    def _steps(self) -> Self:
        onsite = [s for s in self.steps if s.channel == "onsite"]
        if len(onsite) > 1:
            raise ValueError("steps: at most one 'onsite' step (the nudge is offered once)")
        previous = timedelta(0)
        first_email_seen = False
        for index, step in enumerate(self.steps):
            where = f"steps[{index}]"
            human = step.sla or step.skills or step.queue or step.remind_before is not None
            if step.channel not in ("agent_call", "onsite") and human:
                raise ValueError(
                    f"{where}: sla, remind_before, skills and queue are for agent_call and onsite"
                )
            if step.channel == "onsite":
                continue
            if step.delay < previous:
                raise ValueError(
                    f"{where}.delay: steps run in order; {_fmt(step.delay)} "
                    f"comes before the previous step's {_fmt(previous)}"
                )
            previous = step.delay
            if step.delay >= self.expire_after:
                raise ValueError(
                    f"{where}.delay: {_fmt(step.delay)} is after the cart expires "
                    f"({_fmt(self.expire_after)})"
                )
            if step.channel == "email" and not first_email_seen:
                first_email_seen = True
                if step.delay > FIRST_EMAIL_LIMIT:
                    raise ValueError(
                        f"{where}.delay: the first email must go within 24h of "
                        f"abandonment, not {_fmt(step.delay)}"
                    )
        return self


def _fmt(value: timedelta) -> str:
    return format_duration(value)


class CadencePublic(CadenceIn):
    version: int = Field(description="0 is the built-in default, never stored.")


def default_cadence() -> CadenceIn:
    """The brief's journey: nudge on site; email at +1h; SMS under $200 or an agent's call over
    it at +1d; a last email at +3d."""
    return CadenceIn(
        steps=[
            CadenceStepIn(channel=Channel.ONSITE),
            CadenceStepIn(channel=Channel.EMAIL, delay=timedelta(hours=1)),
            CadenceStepIn(
                channel=Channel.SMS,
                delay=timedelta(days=1),
                conditions=StepConditions(max_cart_value=200),
            ),
            CadenceStepIn(
                channel=Channel.AGENT_CALL,
                delay=timedelta(days=1),
                conditions=StepConditions(min_cart_value=200),
                sla=timedelta(hours=4),
            ),
            CadenceStepIn(
                channel=Channel.EMAIL, delay=timedelta(days=3), template="cart_last_chance"
            ),
        ]
    )


def to_workflow_spec(cadence: CadenceIn, version: int) -> CadenceSpec:
    """The plain-dataclass form the workflow is started with (and keeps for its whole life)."""
    cap = cadence.frequency_cap
    return CadenceSpec(
        version=version,
        abandon_after_seconds=int(cadence.abandon_after.total_seconds()),
        expire_after_seconds=int(cadence.expire_after.total_seconds()),
        guards=GuardSpec(
            quiet_start=cadence.quiet_hours.start.strftime("%H:%M"),
            quiet_end=cadence.quiet_hours.end.strftime("%H:%M"),
            cap_max_messages=cap.max_messages if cap else None,
            cap_window_seconds=int(cap.per.total_seconds()) if cap else 86400,
        ),
        steps=[
            StepSpec(
                index=index,
                channel=step.channel,
                delay_seconds=int(step.delay.total_seconds()),
                template=step.template or DEFAULT_TEMPLATES.get(step.channel, ""),
                min_cart_value=step.conditions.min_cart_value,
                max_cart_value=step.conditions.max_cart_value,
                unless=step.conditions.unless,
                discount_code=step.discount.code if step.discount else None,
                discount_pool=step.discount.pool if step.discount else None,
                offer=list(step.offer) if step.channel == "onsite" else [],
                sla_seconds=int(step.sla.total_seconds()) if step.sla else 0,
                remind_before_seconds=(
                    int(step.remind_before.total_seconds())
                    if step.remind_before is not None
                    else None
                ),
                queue=step.queue,
                skills=list(step.skills),
            )
            for index, step in enumerate(cadence.steps)
        ],
    )
