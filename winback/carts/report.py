"""The cart-recovery report: the funnel, recovery by step and channel, and the study's test.

The study behind the brief scored retailers on four things for a shopper who left a cart with a
contact: proactive help on the site, an email within 24 h, an SMS or call within the week, and an
agent who could see the cart. ``study_test`` scores this retailer on the first three from its own
data (the fourth comes with the agents' customer view).
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.messaging.models import Message
from workflows.vocabulary import PROVIDER_CHANNELS, MessageStatus

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


def _went_out(message: Message) -> bool:
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
        if m.status in DELIVERED or m.channel == "onsite":
            for f in figures(m.step_index, m.channel):
                f.sent += 1

    abandoned = [c for c in carts if c.abandoned_at is not None]
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

    contacted_24h = [
        c for c in abandoned if sent_within(c, FOLLOW_UP_CHANNELS, timedelta(hours=24))
    ]
    with_contact = [c for c in abandoned if c.customer_id in contactable]
    nudged = [c for c in carts if any(m.channel == "onsite" for m in by_cart[c.cart_id])]
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
                sum(
                    1
                    for c in with_contact
                    if any(m.channel == "onsite" for m in by_cart[c.cart_id])
                ),
                len(with_contact),
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
    )
