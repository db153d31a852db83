"""The cart-recovery report: the funnel, recovery by step and channel, and the study's test.

The study behind the brief scored retailers on four things for a shopper who left a cart with a
contact: proactive help on the site, an email within 24 h, an SMS or call within the week, and an
agent who could see the cart. ``study_test`` scores this retailer on the first three from its own
data (the fourth comes with the agents' customer view).
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.holdout import HELD_OUT, TREATED
from winback.carts.lift import newcombe_difference
from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.messaging.models import Message
from workflows.vocabulary import PROVIDER_CHANNELS, CartStatus, MessageStatus

FOLLOW_UP_CHANNELS = PROVIDER_CHANNELS
DELIVERED = MessageStatus.TOUCHED
# The study's "SMS or call": a text, an automated call, or an agent's call. An agent who dialled
# and got no answer still called (``not_reached``), as an automated call that rang out did.
CALL_OR_SMS_CHANNELS = ("sms", "voice", "agent_call")
AGENT_CALL_MADE = (*DELIVERED, "not_reached")


class StepFigures(BaseModel):
    step_index: int | None
    channel: str
    sent: int = 0
    recovered: int = 0
    revenue: float = 0.0
    conversion_rate: float = 0.0


class StudyTest(BaseModel):
    abandoned_with_contact: int
    nudged_on_site: float
    emailed_within_24h: float
    sms_or_call_within_7d: float


class CartDay(BaseModel):
    """One day's carts (by the day they were created, in the store's time zone) and how far
    each got: the funnel of the carts started that day."""

    day: date
    carts_started: int = 0
    carts_abandoned: int = 0
    contacted_within_24h: int = 0
    carts_recovered: int = 0
    revenue_recovered: float = 0.0


class RecoveredRevenueDay(BaseModel):
    """Recovered carts and their revenue, by the day the cart was abandoned (store's time
    zone) and the step and channel credited with the order."""

    day: date
    step_index: int | None
    channel: str
    recovered: int = 0
    revenue: float = 0.0


class GroupFigures(BaseModel):
    carts: int = Field(description="Carts of the group started in the period.")
    conversions: int = Field(description="Of those, carts that ended in an order.")
    conversion_rate: float
    revenue: float = Field(description="Order value of those orders, attributed or not.")
    revenue_per_cart: float


class HoldoutFigures(BaseModel):
    """Treated carts against the held-out ones: what Winback's touches really added. The
    verdict and the lift come first: what a reader looks for."""

    treated: GroupFigures
    held_out: GroupFigures
    verdict: Literal["significant", "not significant"] = Field(
        description="Significant when the interval leaves out 0."
    )
    lift: float | None = Field(
        description="Treated conversion rate - held-out conversion rate (0.04 = 4 points); "
        "null while a group is empty."
    )
    lift_ci_low: float | None
    lift_ci_high: float | None
    incremental_revenue: float = Field(
        description="(treated revenue per cart - held-out revenue per cart) x treated carts."
    )
    relative_lift: float | None = Field(description="lift / held-out conversion rate.")
    confidence: float = 0.95
    method: Literal["newcombe_hybrid_score"] = Field(
        default="newcombe_hybrid_score",
        description="Newcombe's (1998) hybrid score interval for a difference of proportions.",
    )
    messages_held_out: int = Field(description="Touches recorded for held-out carts, not sent.")


class CartRecoveryReport(BaseModel):
    since: datetime
    until: datetime
    carts_started: int
    carts_abandoned: int
    carts_nudged: int
    contacted_within_24h: int
    carts_recovered: int
    revenue_recovered: float
    recovery_rate: float  # abandoned carts recovered / abandoned carts
    by_step: list[StepFigures]
    by_channel: list[StepFigures]
    study_test: StudyTest
    timezone: str = Field(default="UTC", description="The store's time zone: what a day is.")
    by_day: list[CartDay] = Field(
        default_factory=list,
        description="The funnel per creation day; days without carts left out.",
    )
    recovered_by_abandonment_day: list[RecoveredRevenueDay] = Field(
        default_factory=list,
        description="Recovered revenue per abandonment day, step and channel (recovered carts "
        "that were abandoned; an order before abandonment is credited to no day here).",
    )
    holdout: HoldoutFigures | None = Field(
        default=None, description="Only when carts of the period were in a holdout experiment."
    )


def _went_out(message: Message) -> bool:
    if message.status == MessageStatus.HELD_OUT:
        return False
    if message.channel == "agent_call":
        return message.status in AGENT_CALL_MADE
    return message.status in DELIVERED


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _day(moment: datetime, zone: ZoneInfo) -> date:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


async def cart_recovery_report(
    session: AsyncSession,
    *,
    retailer_id: str,
    since: datetime,
    until: datetime,
    timezone: str = "UTC",
) -> CartRecoveryReport:
    carts = (
        await session.exec(
            select(Cart).where(
                Cart.retailer_id == retailer_id,
                col(Cart.created_at) >= since,
                col(Cart.created_at) < until,
                col(Cart.workflow_started),
            )
        )
    ).all()
    ids = [c.cart_id for c in carts]
    messages = (
        (
            await session.exec(
                select(Message).where(
                    Message.retailer_id == retailer_id, col(Message.cart_id).in_(ids)
                )
            )
        ).all()
        if ids
        else []
    )
    by_cart: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        by_cart[m.cart_id or ""].append(m)
    contactable = {
        c.id
        for c in (
            await session.exec(
                select(Customer).where(
                    Customer.retailer_id == retailer_id,
                    col(Customer.id).in_([c.customer_id for c in carts if c.customer_id]),
                )
            )
        ).all()
        if c.email or c.phone
    }

    steps: dict[tuple[int | None, str], StepFigures] = {}
    channels: dict[str, StepFigures] = {}

    def figures(index: int | None, channel: str) -> tuple[StepFigures, StepFigures]:
        step = steps.setdefault((index, channel), StepFigures(step_index=index, channel=channel))
        chan = channels.setdefault(channel, StepFigures(step_index=None, channel=channel))
        return step, chan

    for m in messages:
        if _touched(m):
            for f in figures(m.step_index, m.channel):
                f.sent += 1

    abandoned = [c for c in carts if c.abandoned_at is not None]
    # The credit decided when the order came in (``winback.carts.attribution``: the last touch
    # within its channel's window, never a held-out record), from the cart's own cadence.
    recovered = [c for c in carts if c.recovered_channel is not None]
    for c in recovered:
        for f in figures(c.recovered_step, c.recovered_channel or ""):
            f.recovered += 1
            f.revenue = round(f.revenue + (c.order_value or 0.0), 2)
    for f in [*steps.values(), *channels.values()]:
        f.conversion_rate = _rate(f.recovered, f.sent)

    def sent_within(cart: Cart, chans: tuple[str, ...], window: timedelta) -> bool:
        assert cart.abandoned_at is not None
        limit = cart.abandoned_at + window
        return any(
            m.channel in chans and _went_out(m) and m.created_at <= limit
            for m in by_cart[cart.cart_id]
        )

    def nudged_on_site(cart: Cart) -> bool:
        return any(m.channel == "onsite" and _touched(m) for m in by_cart[cart.cart_id])

    contacted_24h = [
        c for c in abandoned if sent_within(c, FOLLOW_UP_CHANNELS, timedelta(hours=24))
    ]
    # The study scores how the retailer treats shoppers: carts held out on purpose are not in it.
    with_contact = [
        c for c in abandoned if c.customer_id in contactable and c.holdout_group != HELD_OUT
    ]
    nudged = [c for c in carts if nudged_on_site(c)]
    zone = ZoneInfo(timezone)
    days: dict[date, CartDay] = {}
    contacted_ids = {c.cart_id for c in contacted_24h}
    for c in carts:
        d = days.setdefault(_day(c.created_at, zone), CartDay(day=_day(c.created_at, zone)))
        d.carts_started += 1
        d.carts_abandoned += c.abandoned_at is not None
        d.contacted_within_24h += c.cart_id in contacted_ids
        if c.recovered_channel is not None:
            d.carts_recovered += 1
            d.revenue_recovered = round(d.revenue_recovered + (c.order_value or 0.0), 2)
    revenue_days: dict[tuple[date, int | None, str], RecoveredRevenueDay] = {}
    for c in recovered:
        if c.abandoned_at is None:
            continue
        key = (_day(c.abandoned_at, zone), c.recovered_step, c.recovered_channel or "")
        r = revenue_days.setdefault(
            key, RecoveredRevenueDay(day=key[0], step_index=key[1], channel=key[2])
        )
        r.recovered += 1
        r.revenue = round(r.revenue + (c.order_value or 0.0), 2)
    return CartRecoveryReport(
        since=since,
        until=until,
        carts_started=len(carts),
        carts_abandoned=len(abandoned),
        carts_nudged=len(nudged),
        contacted_within_24h=len(contacted_24h),
        carts_recovered=len(recovered),
        revenue_recovered=round(sum(c.order_value or 0.0 for c in recovered), 2),
        recovery_rate=_rate(sum(1 for c in recovered if c.abandoned_at), len(abandoned)),
        by_step=sorted(steps.values(), key=lambda f: (f.step_index is None, f.step_index or 0)),
        by_channel=sorted(channels.values(), key=lambda f: f.channel),
        study_test=StudyTest(
            abandoned_with_contact=len(with_contact),
            nudged_on_site=_rate(
                sum(1 for c in with_contact if nudged_on_site(c)), len(with_contact)
            ),
            emailed_within_24h=_rate(
                sum(1 for c in with_contact if sent_within(c, ("email",), timedelta(hours=24))),
                len(with_contact),
            ),
            sms_or_call_within_7d=_rate(
                sum(
                    1
                    for c in with_contact
                    if sent_within(c, CALL_OR_SMS_CHANNELS, timedelta(days=7))
                ),
                len(with_contact),
            ),
        ),
        timezone=timezone,
        by_day=[days[d] for d in sorted(days)],
        recovered_by_abandonment_day=sorted(
            revenue_days.values(),
            key=lambda r: (r.day, r.step_index is None, r.step_index or 0, r.channel),
        ),
        holdout=holdout_figures(carts, messages),
    )


def _touched(message: Message) -> bool:
    """Counted as sent: went out, or an on-site nudge offered (never a held-out record)."""
    if message.status == MessageStatus.HELD_OUT:
        return False
    return message.status in DELIVERED or message.channel == "onsite"


def _group(carts: Sequence[Cart]) -> GroupFigures:
    converted = [c for c in carts if c.status == CartStatus.ORDERED]
    revenue = round(sum(c.order_value or 0.0 for c in converted), 2)
    return GroupFigures(
        carts=len(carts),
        conversions=len(converted),
        conversion_rate=_rate(len(converted), len(carts)),
        revenue=revenue,
        revenue_per_cart=round(revenue / len(carts), 4) if carts else 0.0,
    )


def holdout_figures(carts: Sequence[Cart], messages: Sequence[Message]) -> HoldoutFigures | None:
    """Treated against held-out carts, by orders placed (attributed or not: the held-out carts
    had no touch to attribute to, which is the point). None without an experiment."""
    treated = [c for c in carts if c.holdout_group == TREATED]
    held = [c for c in carts if c.holdout_group == HELD_OUT]
    if not treated and not held:
        return None
    t, h = _group(treated), _group(held)
    lift = low = high = relative = None
    verdict: Literal["significant", "not significant"] = "not significant"
    if treated and held:
        interval = newcombe_difference(t.conversions, t.carts, h.conversions, h.carts)
        lift = round(t.conversions / t.carts - h.conversions / h.carts, 6)
        low, high = round(interval.low, 6), round(interval.high, 6)
        if h.conversions:
            relative = round(lift / (h.conversions / h.carts), 4)
        if low > 0 or high < 0:
            verdict = "significant"
    per_cart_gain = (t.revenue / t.carts if t.carts else 0.0) - (
        h.revenue / h.carts if h.carts else 0.0
    )
    return HoldoutFigures(
        treated=t,
        held_out=h,
        messages_held_out=sum(1 for m in messages if m.status == MessageStatus.HELD_OUT),
        incremental_revenue=round(per_cart_gain * t.carts, 2) if treated and held else 0.0,
        lift=lift,
        lift_ci_low=low,
        lift_ci_high=high,
        relative_lift=relative,
        verdict=verdict,
    )
