"""The dashboards' pages and their CSV downloads.

Each page asks the same domain services the report routes use (``cart_recovery_report``,
``feedback_report``) with the same scoping (``ReportReader``), and embeds the report exactly as
the route returns it (the model's JSON) for the charts; the tables under the charts and the CSV
files are built from that same report (``tables.py``).
"""

import re
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep
from api.pages.console.templating import render
from api.pages.dashboard.auth import DashboardUser, DashboardUserDep
from api.pages.dashboard.tables import Table, cart_tables, feedback_tables, to_csv
from api.periods import local_day_period
from winback.carts.report import CartRecoveryReport, cart_recovery_report
from winback.feedback.alert_rules_store import current_rules
from winback.feedback.report import FeedbackReport, feedback_report
from winback.platform.clock import utcnow

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PRESET_DAYS = (7, 30, 90)

FromParam = Annotated[
    str | None, Query(alias="from", max_length=10, description="First day, YYYY-MM-DD.")
]
ToParam = Annotated[str | None, Query(max_length=10, description="Last day, YYYY-MM-DD.")]
UnitParam = Annotated[str | None, Query(max_length=60)]


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: a day is written YYYY-MM-DD"
        ) from None


class Period:
    """The picked days, both included, and the report period they make."""

    def __init__(self, user: DashboardUser, first: str | None, last: str | None) -> None:
        self.today = utcnow().astimezone(ZoneInfo(user.retailer.timezone)).date()
        self.first, self.last, self.since, self.until = local_day_period(
            _day(first, "from"), _day(last, "to"), user.retailer.timezone, today=self.today
        )
        self.days = (self.last - self.first).days + 1

    def presets(self, **extra: str | None) -> list[tuple[str, int, str]]:
        """The quick picks, each ending today: (label, days, query string)."""
        picks = []
        for days in PRESET_DAYS:
            first = self.today - timedelta(days=days - 1)
            params = {"from": first.isoformat(), "to": self.today.isoformat(), **extra}
            picks.append(
                (f"Last {days} days", days, urlencode({k: v for k, v in params.items() if v}))
            )
        return picks

    def query(self, **extra: str | None) -> str:
        params = {"from": self.first.isoformat(), "to": self.last.isoformat(), **extra}
        return urlencode({k: v for k, v in params.items() if v})


@router.get("", response_class=HTMLResponse)
async def dashboard_home(request: Request, user: DashboardUserDep) -> Response:
    """Carts first for the retailer; a business unit's owner has only the feedback page (the
    period asked for, if any, goes along)."""
    target = "/dashboard/feedback" if user.business_unit else "/dashboard/carts"
    if request.url.query:
        target += f"?{request.url.query}"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


async def _cart_report(
    session: SessionDep, user: DashboardUser, period: Period
) -> CartRecoveryReport:
    user.reader.require_whole_retailer()
    return await cart_recovery_report(
        session,
        retailer_id=user.retailer.id,
        since=period.since,
        until=period.until,
        timezone=user.retailer.timezone,
    )


async def _feedback_report(
    session: SessionDep, user: DashboardUser, period: Period, unit: str | None
) -> FeedbackReport:
    return await feedback_report(
        session,
        retailer_id=user.retailer.id,
        since=period.since,
        until=period.until,
        business_unit=user.reader.unit(unit or None),
        timezone=user.retailer.timezone,
    )


def _page(
    request: Request,
    template: str,
    user: DashboardUser,
    period: Period,
    report: Any,
    tables: dict[str, Table],
    **extra: Any,
) -> HTMLResponse:
    return render(
        request,
        template,
        {
            "user": user,
            "period": period,
            # The charts' data: the report as its JSON route answers it.
            "report_json": report.model_dump(mode="json"),
            "report": report,
            "tables": tables,
            **extra,
        },
    )


@router.get("/carts", response_class=HTMLResponse)
async def carts_page(
    request: Request,
    user: DashboardUserDep,
    session: SessionDep,
    from_: FromParam = None,
    to: ToParam = None,
) -> HTMLResponse:
    """The cart funnel by day, recovered revenue by step and channel, the study's test."""
    period = Period(user, from_, to)
    report = await _cart_report(session, user, period)
    return _page(request, "dashboard/carts.html", user, period, report, cart_tables(report))


@router.get("/carts/{table}.csv")
async def carts_csv(
    user: DashboardUserDep,
    session: SessionDep,
    table: str,
    from_: FromParam = None,
    to: ToParam = None,
) -> Response:
    """One of the cart page's tables as CSV."""
    period = Period(user, from_, to)
    tables = cart_tables(await _cart_report(session, user, period))
    return _csv(user, period, tables, table, "carts")


@router.get("/feedback", response_class=HTMLResponse)
async def feedback_page(
    request: Request,
    user: DashboardUserDep,
    session: SessionDep,
    from_: FromParam = None,
    to: ToParam = None,
    unit: UnitParam = None,
) -> HTMLResponse:
    """NPS/CSAT, the closed loop's figures, the root-cause Pareto chart and the ROI table."""
    period = Period(user, from_, to)
    report = await _feedback_report(session, user, period, unit)
    rules = await current_rules(session, retailer_id=user.retailer.id)
    units = [(u.id, u.name) for u in rules.business_units] if rules else []
    if user.business_unit:
        units = [u for u in units if u[0] == user.business_unit]
    return _page(
        request,
        "dashboard/feedback.html",
        user,
        period,
        report,
        feedback_tables(report),
        units=units,
        unit=report.business_unit,
    )


@router.get("/feedback/{table}.csv")
async def feedback_csv(
    user: DashboardUserDep,
    session: SessionDep,
    table: str,
    from_: FromParam = None,
    to: ToParam = None,
    unit: UnitParam = None,
) -> Response:
    """One of the feedback page's tables as CSV."""
    period = Period(user, from_, to)
    report = await _feedback_report(session, user, period, unit)
    name = f"feedback-{report.business_unit}" if report.business_unit else "feedback"
    return _csv(user, period, feedback_tables(report), table, name)


def _csv(
    user: DashboardUser, period: Period, tables: dict[str, Table], slug: str, page: str
) -> Response:
    table = tables.get(slug)
    if table is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no table {slug!r}; there are: {', '.join(tables)}"
        )
    filename = re.sub(
        r"[^A-Za-z0-9_.-]",
        "_",
        f"winback-{user.retailer.id}-{page}-{slug}-{period.first}-{period.last}.csv",
    )
    return Response(
        to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
