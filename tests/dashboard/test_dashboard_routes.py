"""The dashboards over HTTP, on the real app and database: sign-in with an API key, the
figures of a store known by hand (``tests/support/dashboards.py``), the by-day series of the
report routes the charts read, a business unit's key kept to its unit, another retailer's data
invisible, and the CSV downloads' exact content."""

import csv
import io
import re
from typing import Any

import httpx
import pytest

from tests.conftest import RetailerClient, Stack
from tests.support.dashboards import DAY1, DAY2, FORMULA_CAUSE, PERIOD, seed_store

pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]
REPORT_PERIOD = {"since": f"{DAY1}T00:00:00Z", "until": f"{DAY2}T23:59:59Z"}


@pytest.fixture
async def acme(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Acme")
    await seed_store(stack.sessions, retailer.id)
    return retailer


@pytest.fixture
async def beta(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer("Beta")
    await seed_store(stack.sessions, retailer.id, scale=9.99)
    return retailer


async def unit_key(retailer: RetailerClient, unit: str) -> str:
    response = await retailer.post("/v1/api-keys", {"business_unit": unit, "name": "Olga"})
    assert response.status_code == 201, response.text
    assert response.json()["business_unit"] == unit
    return str(response.json()["api_key"])


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(api: httpx.AsyncClient, key: str) -> httpx.Response:
    """Signs this client in (its cookies replaced); answers the page it lands on."""
    api.cookies.clear()
    form = await api.get("/dashboard/sign-in")
    response = await api.post(
        "/dashboard/sign-in",
        data={"api_key": key, "csrf_token": csrf_of(form), "next": "/dashboard"},
    )
    assert response.status_code == 303, response.text
    return await api.get(response.headers["location"], follow_redirects=True)


def rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


def embedded_report(page: httpx.Response) -> dict[str, Any]:
    import json
    from html import unescape

    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page.text)
    assert found, page.text
    return dict(json.loads(unescape(found.group(1))))


# --- the report routes' series --------------------------------------------------------------


async def test_report_routes_carry_the_series_the_charts_draw(acme: RetailerClient) -> None:
    carts = (await acme.get("/v1/reports/cart-recovery", params=REPORT_PERIOD)).json()
    assert carts["by_day"] == [
        {
            "day": str(DAY1),
            "carts_started": 3,
            "carts_abandoned": 2,
            "contacted_within_24h": 1,
            "carts_recovered": 1,
            "revenue_recovered": 100.0,
        },
        {
            "day": str(DAY2),
            "carts_started": 2,
            "carts_abandoned": 2,
            "contacted_within_24h": 1,
            "carts_recovered": 1,
            "revenue_recovered": 50.0,
        },
    ]
    assert carts["recovered_by_abandonment_day"] == [
        {"day": str(DAY1), "step_index": 1, "channel": "email", "recovered": 1, "revenue": 100.0},
        {"day": str(DAY2), "step_index": 2, "channel": "sms", "recovered": 1, "revenue": 50.0},
    ]
    assert carts["study_test"] == {
        "abandoned_with_contact": 4,
        "nudged_on_site": 0.25,
        "emailed_within_24h": 0.25,
        "sms_or_call_within_7d": 0.25,
    }
    feedback = (await acme.get("/v1/reports/feedback", params=REPORT_PERIOD)).json()
    assert feedback["trend"] == [
        {
            "day": str(DAY1),
            "nps_answers": 2,
            "nps": 0.0,
            "csat_answers": 1,
            "csat": 1.0,
            "cases_opened": 2,
            "hot_cases": 1,
        }
    ]


async def test_a_day_is_the_stores_day(stack: Stack) -> None:
    """A cart started at 23:30 UTC on day 1 is a day-2 cart in Madrid (UTC+1 in November)."""
    tokyo = await stack.retailer("Madrid", timezone="Europe/Madrid")
    await seed_store(stack.sessions, tokyo.id)
    carts = (await tokyo.get("/v1/reports/cart-recovery", params=REPORT_PERIOD)).json()
    assert carts["timezone"] == "Europe/Madrid"
    assert [d["day"] for d in carts["by_day"]] == [str(DAY1), str(DAY2)]  # 09:00 UTC = 10:00


# --- sign-in ----------------------------------------------------------------------------------


async def test_pages_need_a_session_and_the_key_signs_in(
    stack: Stack, acme: RetailerClient
) -> None:
    api = stack.api
    api.cookies.clear()
    away = await api.get("/dashboard/carts?from=2026-11-02")
    assert away.status_code == 303
    assert (
        away.headers["location"]
        == "/dashboard/sign-in?next=%2Fdashboard%2Fcarts%3Ffrom%3D2026-11-02"
    )
    assert (await api.get("/dashboard/carts/funnel.csv")).status_code == 303

    no_csrf = await api.post("/dashboard/sign-in", data={"api_key": acme.api_key})
    assert no_csrf.status_code == 403 and "expired" in no_csrf.text
    wrong = await api.post(
        "/dashboard/sign-in", data={"api_key": "wb_nope", "csrf_token": csrf_of(no_csrf)}
    )
    assert wrong.status_code == 401 and "not a Winback API key" in wrong.text
    elsewhere = await api.post(
        "/dashboard/sign-in",
        data={"api_key": acme.api_key, "csrf_token": csrf_of(wrong), "next": "//evil.test/x"},
    )
    assert elsewhere.headers["location"] == "/dashboard"
    page = await sign_in(api, acme.api_key)
    assert str(page.url).endswith("/dashboard/carts")
    assert "Cart recovery" in page.text and "Sign out" in page.text
    cookie = next(c for c in api.cookies.jar if c.name == "winback_dashboard")
    assert cookie.path == "/dashboard" and cookie.has_nonstandard_attr("HttpOnly")

    # Signing out needs the session's CSRF token; then the pages ask for the key again.
    assert (await api.post("/dashboard/sign-out")).status_code == 403
    out = await api.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303
    assert (await api.get("/dashboard/carts")).status_code == 303


async def test_the_cart_page_shows_the_stores_figures(stack: Stack, acme: RetailerClient) -> None:
    page = await sign_in(stack.api, acme.api_key)
    page = await stack.api.get("/dashboard/carts", params=PERIOD)
    assert page.status_code == 200
    # The charts read the report exactly as its route answers it.
    route = (
        await acme.get(
            "/v1/reports/cart-recovery",
            params={"since": f"{DAY1}T00:00:00Z", "until": "2026-11-04T00:00:00Z"},
        )
    ).json()
    assert embedded_report(page) == route
    text = re.sub(r"\s+", " ", page.text)
    assert "150.00" in text  # revenue recovered
    assert "25.0 %" in text  # each of the study's tests
    assert 'id="holdout"' in text and "No holdout group in this period" in text
    assert "/static/vendor/chart-4.5.1.umd.min.js" in text
    library = await stack.api.get("/static/vendor/chart-4.5.1.umd.min.js")
    assert library.status_code == 200 and library.text.startswith("/*!\n * Chart.js v4.5.1")


# --- business units --------------------------------------------------------------------------


async def test_a_units_key_reads_only_its_unit(stack: Stack, acme: RetailerClient) -> None:
    key = await unit_key(acme, "store-a")
    headers = {"X-API-Key": key}
    mine = await stack.api.get("/v1/reports/feedback", params=REPORT_PERIOD, headers=headers)
    assert mine.status_code == 200
    assert (mine.json()["business_unit"], mine.json()["answers"]) == ("store-a", 2)
    assert [c["category"] for c in mine.json()["root_causes"]] == ["delivery_late"]
    other = await stack.api.get(
        "/v1/reports/feedback", params={"business_unit": "store-b"}, headers=headers
    )
    assert other.status_code == 403 and "store-a" in other.json()["detail"]
    for path in ("/v1/reports/cart-recovery", "/v1/cadence", "/v1/retailer", "/v1/api-keys"):
        refused = await stack.api.get(path, headers=headers)
        assert refused.status_code == 403, path

    assert (await acme.post("/v1/api-keys", {"business_unit": "nowhere"})).status_code == 422
    listed = (await acme.get("/v1/api-keys")).json()
    assert [(k["business_unit"], k["name"]) for k in listed] == [("store-a", "Olga")]


async def test_a_unit_owners_dashboard_has_only_their_unit(
    stack: Stack, acme: RetailerClient
) -> None:
    key = await unit_key(acme, "store-a")
    page = await sign_in(stack.api, key)
    assert str(page.url).endswith("/dashboard/feedback")
    assert 'href="/dashboard/carts' not in page.text
    page = await stack.api.get("/dashboard/feedback", params=PERIOD)
    report = embedded_report(page)
    assert (report["business_unit"], report["answers"], report["cases_opened"]) == ("store-a", 2, 1)
    assert "HYPERLINK" not in page.text and "Store B" not in page.text

    assert (await stack.api.get("/dashboard/carts", params=PERIOD)).status_code == 403
    assert (await stack.api.get("/dashboard/carts/funnel.csv")).status_code == 403
    other = await stack.api.get("/dashboard/feedback", params={**PERIOD, "unit": "store-b"})
    assert other.status_code == 403 and "Not allowed" in other.text
    causes = rows(await stack.api.get("/dashboard/feedback/root-causes.csv", params=PERIOD))
    assert causes == [
        ["Root cause", "Cases", "Share", "Cumulative share"],
        ["delivery_late", "1", "1.0", "1.0"],
    ]

    # The retailer revokes the key: the session ends with it.
    listed = (await acme.get("/v1/api-keys")).json()
    gone = await acme.stack.api.delete(f"/v1/api-keys/{listed[0]['id']}", headers=acme.headers)
    assert gone.status_code == 204
    assert (await stack.api.get("/dashboard/feedback")).status_code == 303


async def test_the_retailer_picks_a_unit(stack: Stack, acme: RetailerClient) -> None:
    await sign_in(stack.api, acme.api_key)
    page = await stack.api.get("/dashboard/feedback", params={**PERIOD, "unit": "store-b"})
    report = embedded_report(page)
    assert (report["business_unit"], report["answers"], report["csat"]) == ("store-b", 1, 1.0)
    assert '<option value="store-b" selected>' in page.text


# --- tenants --------------------------------------------------------------------------------


async def test_another_retailers_data_is_invisible(
    stack: Stack, acme: RetailerClient, beta: RetailerClient
) -> None:
    await sign_in(stack.api, acme.api_key)
    page = await stack.api.get("/dashboard/carts", params=PERIOD)
    assert embedded_report(page)["revenue_recovered"] == 150.0  # beta's is 1,498.50
    assert "1,498.50" not in page.text and "999" not in page.text
    funnel = rows(await stack.api.get("/dashboard/carts/funnel-by-day.csv", params=PERIOD))
    assert [r[1] for r in funnel[1:]] == ["3", "2"]

    await sign_in(stack.api, beta.api_key)
    page = await stack.api.get("/dashboard/carts", params=PERIOD)
    assert embedded_report(page)["revenue_recovered"] == 1498.5


# --- CSV ------------------------------------------------------------------------------------


async def test_every_table_downloads_as_csv(stack: Stack, acme: RetailerClient) -> None:
    await sign_in(stack.api, acme.api_key)
    response = await stack.api.get("/dashboard/carts/funnel-by-day.csv", params=PERIOD)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="winback-{acme.id}-carts-funnel-by-day-{DAY1}-{DAY2}.csv"'
    )
    assert rows(response) == [
        [
            "Day (carts started)",
            "Started",
            "Abandoned",
            "Contacted within 24 h",
            "Recovered",
            "Revenue recovered",
        ],
        [str(DAY1), "3", "2", "1", "1", "100.0"],
        [str(DAY2), "2", "2", "1", "1", "50.0"],
    ]
    revenue = rows(await stack.api.get("/dashboard/carts/revenue-by-day.csv", params=PERIOD))
    assert revenue[1:] == [
        [str(DAY1), "step 2", "email", "1", "100.0"],
        [str(DAY2), "step 3", "sms", "1", "50.0"],
    ]
    study = rows(await stack.api.get("/dashboard/carts/study-test.csv", params=PERIOD))
    assert study[1] == ["Got the on-site nudge", "0.25", "0.0133", "1.0"]
    # A root cause that reads as a formula stays text in a spreadsheet.
    causes = rows(await stack.api.get("/dashboard/feedback/root-causes.csv", params=PERIOD))
    assert causes[1] == ["'" + FORMULA_CAUSE, "1", "0.5", "0.5"]
    roi = rows(await stack.api.get("/dashboard/feedback/roi.csv", params=PERIOD))
    assert [r[0] for r in roi[1:]] == ["Without the closed loop", "With the closed loop"]

    page = await stack.api.get("/dashboard/carts", params=PERIOD)
    for slug in ("funnel", "funnel-by-day", "revenue-by-day", "by-step", "study-test"):
        assert f"/dashboard/carts/{slug}.csv?from={DAY1}&amp;to={DAY2}" in page.text
        assert rows(await stack.api.get(f"/dashboard/carts/{slug}.csv", params=PERIOD))
    page = await stack.api.get("/dashboard/feedback", params=PERIOD)
    for slug in ("nps-csat-trend", "cases-by-severity", "closed-loop", "root-causes", "roi"):
        assert f"/dashboard/feedback/{slug}.csv?from={DAY1}" in page.text
        assert rows(await stack.api.get(f"/dashboard/feedback/{slug}.csv", params=PERIOD))
    missing = await stack.api.get("/dashboard/carts/nothing.csv")
    assert missing.status_code == 404 and "funnel-by-day" in missing.text


async def test_a_bad_period_is_told_in_words(stack: Stack, acme: RetailerClient) -> None:
    await sign_in(stack.api, acme.api_key)
    backwards = await stack.api.get("/dashboard/carts", params={"from": str(DAY2), "to": str(DAY1)})
    assert backwards.status_code == 422 and "must not be after" in backwards.text
    garbled = await stack.api.get("/dashboard/feedback", params={"from": "yesterday"})
    assert garbled.status_code == 422 and "YYYY-MM-DD" in garbled.text
    long = await stack.api.get("/dashboard/carts", params={"from": "2000-01-01", "to": str(DAY1)})
    assert long.status_code == 422
