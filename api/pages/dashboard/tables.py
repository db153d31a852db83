"""Every table the dashboards show, built once from a report: the page renders it under its
chart (the chart's text alternative) and the CSV download writes the very same rows.

A cell is raw (a count, a share 0..1, an amount); ``Column.kind`` says how a page shows it.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from winback.carts.report import CartRecoveryReport
from winback.feedback.report import FeedbackReport

Kind = Literal["text", "int", "share", "money", "number", "hours", "score"]
Cell = str | int | float | date | None


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind = "int"


@dataclass
class Table:
    slug: str  # its CSV's name
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    row_kinds: list[Kind] | None = None  # a figure/value table: each row's value has its own

    def kind(self, row: int, column: int) -> Kind:
        if self.row_kinds is not None and column > 0:
            return self.row_kinds[row]
        return self.columns[column].kind


def _step(index: int | None) -> str:
    return "—" if index is None else f"step {index + 1}"


# --- carts -----------------------------------------------------------------------------------

# The study's retailers (the 2015 cart study the product brief cites): 1 of 75 reached out while the
# shopper was leaving, 23% followed up within 24 hours; 73% never contacted the shopper at all.
STUDY_RETAILERS = {
    "nudged_on_site": 1 / 75,
    "emailed_within_24h": 0.23,
    "sms_or_call_within_7d": None,
}


def cart_tables(report: CartRecoveryReport) -> dict[str, Table]:
    funnel = Table(
        "funnel",
        "The funnel",
        [Column("Stage", "text"), Column("Carts"), Column("Of those started", "share")],
    )
    started = report.carts_started
    for stage, n in (
        ("Started", report.carts_started),
        ("Abandoned", report.carts_abandoned),
        ("Contacted within 24 h", report.contacted_within_24h),
        ("Recovered", report.carts_recovered),
    ):
        funnel.rows.append([stage, n, round(n / started, 4) if started else None])

    by_day = Table(
        "funnel-by-day",
        "The funnel by day",
        [
            Column("Day (carts started)", "text"),
            Column("Started"),
            Column("Abandoned"),
            Column("Contacted within 24 h"),
            Column("Recovered"),
            Column("Revenue recovered", "money"),
        ],
        note="Each cart counts on the day it was started, however long recovery took.",
    )
    for d in report.by_day:
        by_day.rows.append(
            [
                d.day,
                d.carts_started,
                d.carts_abandoned,
                d.contacted_within_24h,
                d.carts_recovered,
                d.revenue_recovered,
            ]
        )

    revenue = Table(
        "revenue-by-day",
        "Recovered revenue by abandonment day, step and channel",
        [
            Column("Day abandoned", "text"),
            Column("Step", "text"),
            Column("Channel", "text"),
            Column("Carts recovered"),
            Column("Revenue", "money"),
        ],
    )
    for r in report.recovered_by_abandonment_day:
        revenue.rows.append([r.day, _step(r.step_index), r.channel, r.recovered, r.revenue])

    steps = Table(
        "by-step",
        "By step and channel, over the period",
        [
            Column("Step", "text"),
            Column("Channel", "text"),
            Column("Sent"),
            Column("Recovered"),
            Column("Revenue", "money"),
            Column("Conversion", "share"),
        ],
    )
    for f in report.by_step:
        steps.rows.append(
            [_step(f.step_index), f.channel, f.sent, f.recovered, f.revenue, f.conversion_rate]
        )

    study = Table(
        "study-test",
        "The cart study's test",
        [
            Column("Of the abandoned carts with a contact", "text"),
            Column("This store", "share"),
            Column("The study's retailers", "share"),
            Column("Target", "share"),
        ],
        note=f"{report.study_test.abandoned_with_contact} abandoned carts had an email or phone. "
        "The fourth test, an agent who sees the cart when the shopper calls, is the console's "
        "customer panel.",
    )
    t = report.study_test
    for label, value, key in (
        ("Got the on-site nudge", t.nudged_on_site, "nudged_on_site"),
        ("Got an email within 24 h", t.emailed_within_24h, "emailed_within_24h"),
        ("Got an SMS or a call within 7 days", t.sms_or_call_within_7d, "sms_or_call_within_7d"),
    ):
        benchmark = STUDY_RETAILERS[key]
        study.rows.append([label, value, None if benchmark is None else round(benchmark, 4), 1.0])
    return {t.slug: t for t in (funnel, by_day, revenue, steps, study)}


# --- feedback --------------------------------------------------------------------------------


def feedback_tables(report: FeedbackReport) -> dict[str, Table]:
    trend = Table(
        "nps-csat-trend",
        "NPS and CSAT by day",
        [
            Column("Day", "text"),
            Column("NPS answers"),
            Column("NPS", "score"),
            Column("CSAT answers"),
            Column("CSAT (4 or 5)", "share"),
            Column("Cases opened"),
            Column("Hot cases"),
        ],
    )
    for d in report.trend:
        trend.rows.append(
            [
                d.day,
                d.nps_answers,
                d.nps,
                d.csat_answers,
                d.csat,
                d.cases_opened,
                d.hot_cases,
            ]
        )

    loop = Table(
        "closed-loop",
        "The closed loop",
        [Column("Figure", "text"), Column("Value", "number")],
    )
    kinds: list[tuple[str, Cell, Kind]] = [
        ("Answers", report.answers, "int"),
        ("NPS", report.nps, "score"),
        ("CSAT (share 4 or 5)", report.csat, "share"),
        ("Cases opened", report.cases_opened, "int"),
        ("Contact rate", report.contact_rate, "share"),
        ("Median time to first contact", report.median_time_to_first_contact_hours, "hours"),
        ("SLA adherence", report.sla_adherence, "share"),
        ("SLA breaches (escalations)", report.sla_breaches, "int"),
        ("Customers won back", report.customers_won_back, "int"),
        ("Revenue won back (a year)", report.revenue_won_back, "money"),
    ]
    loop.rows = [[label, value] for label, value, _ in kinds]
    loop.row_kinds = [kind for _, _, kind in kinds]

    severity = Table(
        "cases-by-severity",
        "Cases by severity",
        [Column("Severity", "text"), Column("Cases")],
        [["Hot", report.cases_by_severity.hot], ["Normal", report.cases_by_severity.normal]],
    )

    pareto = Table(
        "root-causes",
        "Root causes (Pareto)",
        [
            Column("Root cause", "text"),
            Column("Cases"),
            Column("Share", "share"),
            Column("Cumulative share", "share"),
        ],
        [[c.category, c.cases, c.share, c.cumulative_share] for c in report.root_causes],
    )

    roi = Table(
        "roi",
        "Return on the closed loop, per month",
        [
            Column("", "text"),
            Column("Negative answers", "number"),
            Column("Personal interventions", "number"),
            Column("Won back rate", "share"),
            Column("Customers won back", "number"),
            Column("Revenue won back", "money"),
        ],
        note=f"Over {report.roi.months:g} months; {report.roi.annual_revenue_per_customer:,.0f} "
        "a year per customer won back; without the loop "
        f"{report.roi.baseline_intervention_rate:.0%} of negative answers get a personal "
        f"intervention. Net: {report.roi.net_revenue_won_back_per_month:,.2f} a month.",
    )
    for label, row in (
        ("Without the closed loop", report.roi.without_closed_loop),
        ("With the closed loop", report.roi.with_closed_loop),
    ):
        roi.rows.append(
            [
                label,
                row.negative_answers_per_month,
                row.personal_interventions_per_month,
                row.won_back_rate,
                row.customers_won_back_per_month,
                row.revenue_won_back_per_month,
            ]
        )
    return {t.slug: t for t in (trend, loop, severity, pareto, roi)}


# --- CSV -------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A retailer-named root cause or unit opened in a spreadsheet must stay text.
        return "'" + value
    return value


def to_csv(table: Table) -> str:
    """The table as CSV: a header row, then its rows as they are (shares 0..1, amounts)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_cell(c.title) or "row" for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()
