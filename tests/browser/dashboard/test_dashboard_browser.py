"""The dashboards in Chromium: a retailer signs in with its API key, reads the charts (drawn
by the vendored Chart.js from the report in the page), picks a period, downloads a table as
CSV, and reads the same on a phone; a business unit's owner sees only their unit."""

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import LiveConsole, shot
from tests.conftest import RetailerClient
from tests.support.dashboards import DAY1, DAY2, seed_busy_store, seed_store

FIRST = date(2026, 10, 5)  # four busy weeks, then the two hand-made days of seed_store
LAST = FIRST + timedelta(days=27)
CHARTS_CARTS = ("funnel-by-day", "revenue-by-day", "study-test")
CHARTS_FEEDBACK = ("nps-csat-trend", "cases-by-severity", "root-causes", "roi")


async def sign_in(page: Page, live: LiveConsole, key: str, path: str) -> None:
    await page.goto(f"{live.base_url}{path}")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def charts_drawn(page: Page, names: tuple[str, ...]) -> None:
    for name in names:
        await expect(page.locator(f'canvas[data-chart="{name}"]')).to_have_attribute(
            "data-drawn", "true"
        )


async def test_a_retailer_reads_its_dashboards(
    live: LiveConsole, context: Any, new_context: Any, tmp_path: Path
) -> None:
    acme: RetailerClient = await live.stack.retailer("Acme")
    await seed_busy_store(live.stack.sessions, acme.id, first=FIRST)
    await seed_store(live.stack.sessions, acme.id)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    await page.goto(f"{live.base_url}/dashboard")
    await page.get_by_label("API key").fill("wb_not_a_key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not a Winback API key")
    await sign_in(page, live, acme.api_key, f"/dashboard/carts?from={DAY1}&to={DAY2}")
    await expect(page.get_by_role("heading", name="Cart recovery")).to_be_visible()

    # The hand-made days: the funnel's table says what the chart draws.
    funnel = page.get_by_role("table", name="The funnel by day")
    await expect(funnel.get_by_role("row")).to_have_count(3)
    await expect(funnel.get_by_role("row", name=f"{DAY1} 3 2 1 1 100.00")).to_be_visible()
    await charts_drawn(page, CHARTS_CARTS)
    chart = page.get_by_role("img", name="Line chart of carts started")
    await expect(chart).to_be_visible()

    # A table downloads as the CSV of what is on the page.
    async with page.expect_download() as event:
        await page.get_by_role("link", name="Download CSV of The funnel by day").click()
    download = await event.value
    text = Path(await download.path()).read_text()
    assert text.splitlines()[1:] == [f"{DAY1},3,2,1,1,100.0", f"{DAY2},2,2,1,1,50.0"]

    # The period picker, by keyboard: the four busy weeks.
    await page.get_by_label("From", exact=True).fill(str(FIRST))
    await page.get_by_label("To", exact=True).fill(str(LAST))
    await page.get_by_label("To", exact=True).press("Enter")
    await expect(page).to_have_url(f"{live.base_url}/dashboard/carts?from={FIRST}&to={LAST}")
    await expect(funnel.get_by_role("row")).to_have_count(29)
    await charts_drawn(page, CHARTS_CARTS)
    await expect(page.locator("#holdout")).to_contain_text("No holdout group")
    await page.screenshot(path=shot(tmp_path, "dashboard-carts.png"), full_page=True)

    await page.get_by_role("link", name="Feedback").click()
    await expect(page.get_by_role("heading", name="Feedback and the closed loop")).to_be_visible()
    await charts_drawn(page, CHARTS_FEEDBACK)
    await expect(page.get_by_role("table", name="Root causes (Pareto)")).to_contain_text(
        "delivery_late"
    )
    await expect(
        page.get_by_role("table", name="Return on the closed loop, per month")
    ).to_be_visible()
    await page.screenshot(path=shot(tmp_path, "dashboard-feedback.png"), full_page=True)
    await page.get_by_label("Business unit").select_option("store-b")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("heading", name="Feedback and the closed loop")).to_contain_text(
        "store-b"
    )

    # On a phone: one column, nothing wider than the screen (wide tables scroll in their box).
    phone = await new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    mobile = await phone.new_page()
    await sign_in(mobile, live, acme.api_key, f"/dashboard/carts?from={FIRST}&to={LAST}")
    await charts_drawn(mobile, CHARTS_CARTS)
    width = await mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    await mobile.screenshot(path=shot(tmp_path, "dashboard-phone.png"))
    assert errors == []


async def test_a_unit_owner_sees_only_their_unit(
    live: LiveConsole, context: Any, tmp_path: Path
) -> None:
    acme: RetailerClient = await live.stack.retailer("Acme")
    await seed_store(live.stack.sessions, acme.id)
    made = await acme.post("/v1/api-keys", {"business_unit": "store-a", "name": "Olga"})
    page = await context.new_page()
    await sign_in(page, live, made.json()["api_key"], f"/dashboard?from={DAY1}&to={DAY2}")
    await expect(page.get_by_role("heading", name="Feedback and the closed loop")).to_contain_text(
        "store-a"
    )
    await expect(
        page.get_by_role("navigation", name="Dashboards").get_by_role("link")
    ).to_have_text(["Feedback"])
    await expect(page.get_by_label("Business unit")).to_have_count(0)
    await page.goto(f"{live.base_url}/dashboard/feedback?from={DAY1}&to={DAY2}")
    causes = page.get_by_role("table", name="Root causes (Pareto)")
    await expect(causes.get_by_role("row")).to_have_count(2)
    await expect(causes).to_contain_text("delivery_late")
    await page.goto(f"{live.base_url}/dashboard/carts")
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
