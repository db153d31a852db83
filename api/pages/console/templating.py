"""The console's Jinja2 environment (autoescaped) and the filters its templates use."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
templates = Jinja2Templates(directory=TEMPLATES)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%d %b %H:%M UTC")


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def _money(value: float | None, currency: str = "") -> str:
    return "—" if value is None else f"{value:,.2f} {currency}".strip()


def _humanize(value: str | None) -> str:
    return (value or "").replace("_", " ")


templates.env.filters["when"] = _when
templates.env.filters["iso"] = _iso
templates.env.filters["duration"] = _duration
templates.env.filters["money"] = _money
templates.env.filters["humanize"] = _humanize
templates.env.filters["path"] = lambda value: quote(str(value), safe="/")


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)
