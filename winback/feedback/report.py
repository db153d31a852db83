"""The feedback report: answers, NPS/CSAT, the closed loop's figures, and the deck's ROI table.

Answers count by when they were given (``answered_at``); every case figure is over the cases
opened in the period (``opened_at``), together with their tasks and escalations. The ROI table
is the one from the feedback deck (``004``), computed per month from the retailer's own data:

- with the closed loop, the personal interventions are the cases where the customer was
  reached; without it, the same negative answers get ``baseline_intervention_rate`` of them
  (the retailer's alert rules; 1% by default, the deck's ~10 of ~1,000);
- the won-back rate (cases won back / cases reached) is the same in both rows, as in the deck,
  so the difference between the rows is the volume of interventions the loop makes possible;
- money is customers won back times ``annual_revenue_per_customer`` (the alert rules'; $1,000 by
  default, as in the deck).

Counts, sums and groupings run in SQL; the median reads only the one or two middle rows.
"""

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import String, cast, distinct, func, or_
from sqlalchemy import case as when
from sqlalchemy.sql import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from winback.feedback.alert_rules import AlertRulesIn
from winback.feedback.alert_rules_store import current_rules
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.tasks.models import Escalation, HumanTask
from workflows.vocabulary import AnswerKind, TaskStatus

DAYS_PER_MONTH = 30
NPS_PROMOTER_AT_LEAST = 9  # the standard NPS bands, whatever the retailer's case thresholds
NPS_DETRACTOR_AT_MOST = 6
CSAT_SATISFIED_AT_LEAST = 4


class ScaleCounts(BaseModel):
    nps: int = 0
    csat: int = 0


class SeverityCounts(BaseModel):
    normal: int = 0
    hot: int = 0


class RootCauseFigures(BaseModel):
    category: str
    cases: int
    share: float = Field(description="Of the cases with a root cause.")
    cumulative_share: float


class RoiRow(BaseModel):
    negative_answers_per_month: float
    personal_interventions_per_month: float
    won_back_rate: float = Field(description="Cases won back / cases reached (0 if none).")
    customers_won_back_per_month: float
    revenue_won_back_per_month: float


class RoiTable(BaseModel):
    months: float = Field(description="The period's length in days / 30.")
    annual_revenue_per_customer: float
    baseline_intervention_rate: float
    without_closed_loop: RoiRow
    with_closed_loop: RoiRow
    net_revenue_won_back_per_month: float = Field(description="With minus without the loop.")


class FeedbackDay(BaseModel):
    """One day in the store's time zone: the answers given that day and the cases opened."""

    day: date
    nps_answers: int = 0
    nps: float | None = None
    csat_answers: int = 0
    csat: float | None = None
    cases_opened: int = 0
    hot_cases: int = 0


class FeedbackReport(BaseModel):
    since: datetime
    until: datetime
    business_unit: str | None
    answers: int
    by_scale: ScaleCounts
    nps: float | None = Field(description="% promoters (9-10) - % detractors (0-6), -100..100.")
    csat: float | None = Field(description="Share of CSAT answers scoring 4 or 5, 0..1.")
    csat_mean: float | None
    cases_opened: int
    cases_by_severity: SeverityCounts
    contact_rate: float | None = Field(description="Cases with the customer reached / opened.")
    median_time_to_first_contact_hours: float | None
    sla_adherence: float | None = Field(
        description="Of the cases' completed tasks, the share done without an escalation."
    )
    sla_breaches: int = Field(description="Escalations recorded on the cases.")
    root_causes: list[RootCauseFigures]
    customers_won_back: int
    revenue_won_back: float
    roi: RoiTable
    timezone: str = Field(default="UTC", description="The store's time zone: what a day is.")
    trend: list[FeedbackDay] = Field(
        default_factory=list,
        description="NPS, CSAT and cases opened per day; days without any left out.",
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _select(*columns: Any) -> Select[*tuple[Any, ...]]:
    """A select of any number of columns (sqlmodel's ``select`` has types for up to four)."""
    return Select(*columns)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(when((condition, 1), else_=0)), 0)


async def feedback_report(
    session: AsyncSession,
    *,
    retailer_id: str,
    since: datetime,
    until: datetime,
    business_unit: str | None = None,
    timezone: str = "UTC",
) -> FeedbackReport:
    answer_filter: list[ColumnElement[bool]] = [
        col(FeedbackAnswer.retailer_id) == retailer_id,
        col(FeedbackAnswer.answered_at) >= since,
        col(FeedbackAnswer.answered_at) < until,
    ]
    case_filter: list[ColumnElement[bool]] = [
        col(FeedbackCase.retailer_id) == retailer_id,
        col(FeedbackCase.opened_at) >= since,
        col(FeedbackCase.opened_at) < until,
    ]
    if business_unit is not None:
        answer_filter.append(col(FeedbackAnswer.business_unit) == business_unit)
        case_filter.append(col(FeedbackCase.business_unit) == business_unit)

    # --- answers ---------------------------------------------------------------------------
    score = col(FeedbackAnswer.score)
    by_scale = (
        await session.exec(
            _select(
                col(FeedbackAnswer.scale),
                func.count(),
                func.avg(score),
                _count_if(score >= NPS_PROMOTER_AT_LEAST),
                _count_if(score <= NPS_DETRACTOR_AT_MOST),
                _count_if(score >= CSAT_SATISFIED_AT_LEAST),
                _count_if(col(FeedbackAnswer.kind) == AnswerKind.DETRACTOR),
            )
            .where(*answer_filter)
            .group_by(col(FeedbackAnswer.scale))
        )
    ).all()
    scales = ScaleCounts()
    nps = csat = csat_mean = None
    answers = negative_answers = 0
    for scale, n, mean, high, low, satisfied, detractors in by_scale:
        n, negative = int(n), int(detractors)
        answers += n
        negative_answers += negative
        if scale == "nps":
            scales.nps = n
            nps = round(100 * (int(high) - int(low)) / n, 1)
        elif scale == "csat":
            scales.csat = n
            csat = round(int(satisfied) / n, 4)
            csat_mean = round(float(mean), 2)

    # --- cases -----------------------------------------------------------------------------
    reached = col(FeedbackCase.contact_outcome) == "reached"
    won_back = col(FeedbackCase.won_back).is_(True)
    (
        opened,
        hot,
        normal,
        cases_reached,
        reached_won_back,
        contacted,
        won_back_customers,
        won_back_anonymous,
    ) = (
        await session.exec(
            _select(
                func.count(),
                _count_if(col(FeedbackCase.severity) == "hot"),
                _count_if(col(FeedbackCase.severity) == "normal"),
                _count_if(reached),
                _count_if(reached & won_back),
                func.count(col(FeedbackCase.first_contact_at)),
                func.count(distinct(when((won_back, col(FeedbackCase.customer_id))))),
                _count_if(won_back & col(FeedbackCase.customer_id).is_(None)),
            ).where(*case_filter)
        )
    ).one()
    opened, cases_reached, contacted = int(opened), int(cases_reached), int(contacted)
    customers_won_back = int(won_back_customers) + int(won_back_anonymous)

    median_hours = await _median_hours_to_first_contact(session, case_filter, contacted)

    # --- tasks and escalations of those cases ----------------------------------------------
    # A case's tasks carry its id, and run in its workflow; either identifies them.
    case_ids = select(col(FeedbackCase.id)).where(*case_filter)
    task_of_case = or_(
        col(HumanTask.case_id).in_(select(cast(col(FeedbackCase.id), String)).where(*case_filter)),
        col(HumanTask.workflow_id).in_(select(col(FeedbackCase.workflow_id)).where(*case_filter)),
    )
    done, on_time = (
        await session.exec(
            select(func.count(), _count_if(col(HumanTask.escalation_level) == 0)).where(
                col(HumanTask.retailer_id) == retailer_id,
                col(HumanTask.case_id).is_not(None),
                col(HumanTask.status) == TaskStatus.DONE,
                task_of_case,
            )
        )
    ).one()
    breaches = (
        await session.exec(
            select(func.count()).where(
                col(Escalation.retailer_id) == retailer_id, col(Escalation.case_id).in_(case_ids)
            )
        )
    ).one()

    # --- root causes, ranked -------------------------------------------------------------
    n_cases = func.count()
    causes = (
        await session.exec(
            select(col(FeedbackCase.root_cause), n_cases)
            .where(*case_filter, col(FeedbackCase.root_cause).is_not(None))
            .group_by(col(FeedbackCase.root_cause))
            .order_by(n_cases.desc(), col(FeedbackCase.root_cause))
        )
    ).all()
    with_cause = sum(int(n) for _, n in causes)
    pareto: list[RootCauseFigures] = []
    running = 0
    for category, n in causes:
        running += int(n)
        pareto.append(
            RootCauseFigures(
                category=str(category),
                cases=int(n),
                share=round(int(n) / with_cause, 4),
                cumulative_share=round(running / with_cause, 4),
            )
        )

    # --- money and the deck's table --------------------------------------------------------
    rules = await current_rules(session, retailer_id=retailer_id)
    fields = AlertRulesIn.model_fields
    revenue_per_customer = float(
        rules.annual_revenue_per_customer
        if rules
        else fields["annual_revenue_per_customer"].default
    )
    baseline = float(
        rules.baseline_intervention_rate if rules else fields["baseline_intervention_rate"].default
    )
    months = (until - since).total_seconds() / (DAYS_PER_MONTH * 86400)
    negative_per_month = negative_answers / months
    won_back_rate = int(reached_won_back) / cases_reached if cases_reached else 0.0

    def row(interventions_per_month: float) -> RoiRow:
        customers = interventions_per_month * won_back_rate
        return RoiRow(
            negative_answers_per_month=round(negative_per_month, 2),
            personal_interventions_per_month=round(interventions_per_month, 2),
            won_back_rate=round(won_back_rate, 4),
            customers_won_back_per_month=round(customers, 2),
            revenue_won_back_per_month=round(customers * revenue_per_customer, 2),
        )

    without_loop = row(negative_per_month * baseline)
    with_loop = row(cases_reached / months)

    trend = await _trend(session, answer_filter, case_filter, ZoneInfo(timezone))

    return FeedbackReport(
        since=since,
        until=until,
        business_unit=business_unit,
        answers=answers,
        by_scale=scales,
        nps=nps,
        csat=csat,
        csat_mean=csat_mean,
        cases_opened=opened,
        cases_by_severity=SeverityCounts(normal=int(normal), hot=int(hot)),
        contact_rate=_rate(cases_reached, opened),
        median_time_to_first_contact_hours=median_hours,
        sla_adherence=_rate(int(on_time), int(done)),
        sla_breaches=int(breaches),
        root_causes=pareto,
        customers_won_back=customers_won_back,
        revenue_won_back=round(customers_won_back * revenue_per_customer, 2),
        roi=RoiTable(
            months=round(months, 4),
            annual_revenue_per_customer=revenue_per_customer,
            baseline_intervention_rate=baseline,
            without_closed_loop=without_loop,
            with_closed_loop=with_loop,
            net_revenue_won_back_per_month=round(
                with_loop.revenue_won_back_per_month - without_loop.revenue_won_back_per_month, 2
            ),
        ),
        timezone=timezone,
        trend=trend,
    )


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


async def _trend(
    session: AsyncSession,
    answer_filter: list[ColumnElement[bool]],
    case_filter: list[ColumnElement[bool]],
    zone: ZoneInfo,
) -> list[FeedbackDay]:
    """Per local day. Reads three columns per answer and two per case rather than grouping in
    SQL: a day in the store's time zone is not a date function PostgreSQL and SQLite share."""
    days: dict[date, FeedbackDay] = {}
    tallies: dict[date, list[int]] = {}  # nps: promoters, detractors; csat: satisfied

    def on(moment: datetime) -> FeedbackDay:
        d = _local_day(moment, zone)
        tallies.setdefault(d, [0, 0, 0])
        return days.setdefault(d, FeedbackDay(day=d))

    answers = await session.exec(
        select(
            col(FeedbackAnswer.answered_at), col(FeedbackAnswer.scale), col(FeedbackAnswer.score)
        ).where(*answer_filter)
    )
    for answered_at, scale, score in answers.all():
        day = on(answered_at)
        tally = tallies[day.day]
        if scale == "nps":
            day.nps_answers += 1
            tally[0] += score >= NPS_PROMOTER_AT_LEAST
            tally[1] += score <= NPS_DETRACTOR_AT_MOST
        elif scale == "csat":
            day.csat_answers += 1
            tally[2] += score >= CSAT_SATISFIED_AT_LEAST
    cases = await session.exec(
        select(col(FeedbackCase.opened_at), col(FeedbackCase.severity)).where(*case_filter)
    )
    for opened_at, severity in cases.all():
        day = on(opened_at)
        day.cases_opened += 1
        day.hot_cases += severity == "hot"
    for d, day in days.items():
        promoters, detractors, satisfied = tallies[d]
        if day.nps_answers:
            day.nps = round(100 * (promoters - detractors) / day.nps_answers, 1)
        if day.csat_answers:
            day.csat = round(satisfied / day.csat_answers, 4)
    return [days[d] for d in sorted(days)]


async def _median_hours_to_first_contact(
    session: AsyncSession, case_filter: list[ColumnElement[bool]], contacted: int
) -> float | None:
    """Opened → first contact, over the ``contacted`` cases that have one: reads the middle
    one or two rows of the sorted durations."""
    if not contacted:
        return None
    opened_at, first_contact_at = col(FeedbackCase.opened_at), col(FeedbackCase.first_contact_at)
    if session.get_bind().dialect.name == "sqlite":  # stored as text; julianday() reads it
        hours: Any = (func.julianday(first_contact_at) - func.julianday(opened_at)) * 24.0
    else:
        hours = func.extract("epoch", first_contact_at - opened_at) / 3600.0
    middle = (
        await session.exec(
            select(hours)
            .where(*case_filter, first_contact_at.is_not(None))
            .order_by(hours)
            .offset((contacted - 1) // 2)
            .limit(1 if contacted % 2 else 2)
        )
    ).all()
    return round(sum(float(h) for h in middle) / len(middle), 2)
