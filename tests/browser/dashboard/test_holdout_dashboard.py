"""The cart dashboard's holdout section, filled by the report's ``holdout``: both groups side by
side, the lift with its interval, and the verdict, in Chromium."""

from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import LiveConsole, shot
from tests.browser.dashboard.test_dashboard_browser import sign_in
from tests.support.dashboards import DAY1, at
from winback.carts.holdout import HELD_OUT, TREATED
from winback.carts.models import Cart
from winback.platform.db import SessionFactory, session_scope


async def _seed(sessions: SessionFactory, retailer_id: str) -> None:
    """200 treated carts converting at 12% against 200 held out at 8%, orders of 50."""
    async with session_scope(sessions) as session:
        for group, ordered in ((TREATED, 24), (HELD_OUT, 16)):
            for i in range(200):
                buys = i < ordered
                session.add(
                    Cart(
                        retailer_id=retailer_id,
                        cart_id=f"{group}-{i}",
                        workflow_started=True,
                        created_at=at(DAY1, 9),
                        abandoned_at=at(DAY1, 10),
                        status="ordered" if buys else "abandoned",
                        ordered_at=at(DAY1, 12) if buys else None,
                        order_value=50.0 if buys else None,
                        holdout_bucket=0 if group == HELD_OUT else 9999,
                        holdout_group=group,
                    )
                )


async def test_the_cart_dashboard_shows_the_holdout_groups_and_the_lift(
    live: LiveConsole, context: Any, tmp_path: Path
) -> None:
    acme = await live.stack.retailer("Acme")
    await _seed(live.stack.sessions, acme.id)
    page = await context.new_page()
    await sign_in(page, live, acme.api_key, f"/dashboard/carts?from={DAY1}&to={DAY1}")

    section = page.locator("#holdout")
    groups = page.get_by_role("table", name="Treated vs held-out carts")
    await expect(groups.get_by_role("row", name="Conversion rate 12.0 % 8.0 %")).to_be_visible()
    await expect(groups.get_by_role("row", name="Revenue per cart 6.00 4.00")).to_be_visible()
    lift = page.get_by_role("table", name="The lift")
    await expect(lift.get_by_role("row", name="Incremental revenue 400.00")).to_be_visible()
    await expect(lift.get_by_role("row", name="Lift in conversion +4.0 pp")).to_be_visible()
    await expect(section.locator("#holdout-verdict")).to_contain_text(
        "(95% interval -2.0 pp to +10.0 pp): not significant, the difference may be noise."
    )
    await expect(section).to_contain_text("Newcombe")
    await section.scroll_into_view_if_needed()
    await section.screenshot(path=shot(tmp_path, "dashboard-holdout.png"))
