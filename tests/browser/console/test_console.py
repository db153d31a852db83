"""The agents' console in Chromium: what an agent sees and does, waited on as a person would.

Every task here is real: an ``agent_call`` cadence step opens it on the time-skipping server,
and the worker's activity writes its inbox row, so "appears live" means the page learned of a
row another part of the system wrote.
"""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from twilio.request_validator import RequestValidator

from tests.browser.conftest import LiveConsole, shot
from tests.conftest import RetailerClient
from tests.support.agents import AgentClient, add_agent
from tests.support.api import eventually
from tests.support.helpers import ALL_CONSENT, SHOPPER, cadence
from winback.platform.clock import utcnow
from winback.retailers.models import Retailer
from winback.tasks.screen_pops import record_inbound_call

TIMES = "\N{MULTIPLICATION SIGN}"
CALL_CADENCE = cadence(
    {"channel": "onsite"},
    {"channel": "email", "delay": "30m"},
    {"channel": "agent_call", "delay": "1h", "sla": "4h"},
)
BOOTS = [
    {
        "sku": "BOOT-42",
        "name": "Trail boots EU 42",
        "price": 189.0,
        "quantity": 1,
        "product_id": "trail-boots",
        "category": "shoes",
    },
    {
        "sku": "BOOT-43",
        "name": "Trail boots EU 43",
        "price": 189.0,
        "quantity": 1,
        "product_id": "trail-boots",
        "category": "shoes",
    },
    {"sku": "SOCK-1", "name": "Wool socks", "price": 24.0, "quantity": 2, "category": "shoes"},
]


@pytest.fixture
async def acme(live: LiveConsole) -> RetailerClient:
    retailer = await live.stack.retailer("Acme")
    await retailer.set_cadence(CALL_CADENCE)
    return retailer


async def sign_in(page: Page, live: LiveConsole, agent: AgentClient) -> None:
    await page.goto(f"{live.base_url}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Agent token").fill(agent.token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page.locator("[data-live-state]")).to_have_text("Live")


async def abandon_cart(retailer: RetailerClient, cart_id: str = "c1") -> None:
    """A shopper puts two sizes of one boot in the cart (confusion: the nudge), browses on and
    leaves it."""
    await retailer.event(
        cart_id,
        "item_added",
        items=BOOTS,
        customer=SHOPPER,
        consent=ALL_CONSENT,
        page="/products/trail-boots",
    )
    for page in ("/collections/boots", "/cart"):
        await retailer.event(cart_id, "activity", page=page, customer=SHOPPER)


async def open_call_task(retailer: RetailerClient, agent: AgentClient) -> dict[str, Any]:
    await abandon_cart(retailer)
    await retailer.stack.env.sleep(timedelta(hours=2))
    (task,) = await eventually(agent.tasks, what="the call task")
    return task


def row(page: Page, task: dict[str, Any]) -> Any:
    return page.locator(f'tr[data-task-id="{task["id"]}"]')


async def test_an_agent_signs_in_and_a_new_task_appears_without_reloading(
    live: LiveConsole, acme: RetailerClient, context: Any, tmp_path: Path
) -> None:
    ana = await add_agent(acme, "ana")
    page = await context.new_page()
    await page.goto(f"{live.base_url}/console")
    await page.get_by_label("Agent token").fill("wba_not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not an agent's token")

    await sign_in(page, live, ana)
    await expect(page.get_by_text("No tasks here.")).to_be_visible()
    loads: list[str] = []
    page.on("load", lambda _: loads.append("reload"))

    task = await open_call_task(acme, ana)
    await expect(row(page, task)).to_be_visible()
    await expect(row(page, task)).to_contain_text("Call the shopper")
    await expect(page.locator('[data-view="queues"] .count')).to_have_text("1")

    # Keyboard first: j selects the task, c claims it, without leaving the page.
    await page.keyboard.press("j")
    await expect(row(page, task)).to_be_focused()
    await page.keyboard.press("c")
    await expect(row(page, task).get_by_text("Claimed. It is yours.")).to_be_visible()
    await expect(page.locator('[data-view="mine"] .count')).to_have_text("1")
    assert loads == []  # nothing above reloaded the page
    await page.screenshot(path=shot(tmp_path, "console-inbox.png"))

    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=task["title"])).to_be_visible()


async def test_two_agents_race_to_claim_and_the_loser_sees_it_taken(
    live: LiveConsole,
    acme: RetailerClient,
    new_context: Callable[[], Awaitable[Any]],
) -> None:
    ana = await add_agent(acme, "ana")
    bo = await add_agent(acme, "bo")
    cy = await add_agent(acme, "cy")  # watches without clicking: learns of the claim live
    task = await open_call_task(acme, ana)
    pages: dict[str, Page] = {}
    for agent in (ana, bo, cy):
        page = await (await new_context()).new_page()
        await sign_in(page, live, agent)
        await expect(row(page, task)).to_be_visible()
        pages[agent.id] = page
    watcher = pages.pop("cy")

    await asyncio.gather(
        *(
            row(p, task).get_by_role("button", name=re.compile("^Claim")).click()
            for p in pages.values()
        )
    )

    # Both requests are on their way; the workflow accepts exactly one.
    async def holder() -> str | None:
        return (await ana.task(task["id"]))["claimed_by"]

    winner = await eventually(holder, what="someone to hold the task")
    assert winner in pages
    loser = "bo" if winner == "ana" else "ana"
    await expect(row(pages[winner], task).locator(".state")).to_have_text("Yours")
    await expect(row(pages[loser], task)).to_have_class(re.compile(r"\btaken\b"))
    await expect(row(pages[loser], task).locator(".state")).to_have_text(f"Taken by {winner}")
    await expect(row(watcher, task)).to_have_class(re.compile(r"\btaken\b"))
    await expect(row(watcher, task).locator(".state")).to_have_text(f"Taken by {winner}")
    await expect(
        row(pages[loser], task).get_by_role("button", name=re.compile("^Claim"))
    ).to_have_count(0)


async def test_completing_with_a_wrong_outcome_is_refused_in_words_then_a_right_one_works(
    live: LiveConsole, acme: RetailerClient, context: Any
) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    page = await context.new_page()
    await sign_in(page, live, ana)
    await row(page, task).get_by_role("link").click()
    await page.get_by_role("button", name="Claim this task").click()
    await expect(page.locator("[data-task-state]")).to_have_text("Claimed by ana")

    # A stale form (the page offered an outcome the workflow no longer takes): refused.
    await page.locator("#outcome").evaluate("el => el.add(new Option('teleported', 'teleported'))")
    await page.get_by_label("What happened?").select_option("teleported")
    await page.get_by_label("Notes").fill("tried something")
    await page.keyboard.press("Control+Enter")
    error = page.get_by_role("alert")
    await expect(error).to_contain_text("The workflow does not accept that outcome")
    await expect(error).to_be_focused()
    await expect(page.get_by_label("Notes")).to_have_value("tried something")

    await page.get_by_label("What happened?").select_option("reached_purchased")
    await page.get_by_role("button", name=re.compile("^Complete")).click()
    await expect(page.get_by_role("status")).to_contain_text("Task completed")
    assert (await ana.task(task["id"]))["outcome"] == "reached_purchased"


async def test_the_customer_panel_shows_the_cart_and_the_pages_browsed(
    live: LiveConsole, acme: RetailerClient, context: Any, tmp_path: Path
) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    page = await context.new_page()
    await sign_in(page, live, ana)
    await page.goto(f"{live.base_url}/console/tasks/{task['id']}")
    panel = page.locator("[data-customer-panel]")
    await expect(panel.get_by_role("heading", name=SHOPPER["name"])).to_be_visible()
    await expect(panel.get_by_text(f"1 {TIMES} Trail boots EU 42")).to_be_visible()
    await expect(panel.get_by_text(f"1 {TIMES} Trail boots EU 43")).to_be_visible()
    await expect(panel.get_by_text("/products/trail-boots")).to_be_visible()
    await expect(panel.get_by_text("426.00 USD").first).to_be_visible()
    await expect(panel.get_by_text("SMS: yes")).to_be_visible()
    await expect(panel.get_by_text("Need a hand choosing?")).to_be_visible()  # the nudge
    await expect(panel.locator("table.messages")).to_contain_text("email")
    await expect(panel.locator("table.messages .status")).to_have_text("sent")
    await page.screenshot(path=shot(tmp_path, "console-customer-panel.png"), full_page=True)

    # Lookup by the phone number in another format finds the same panel.
    await page.goto(f"{live.base_url}/console/customers")
    await page.get_by_label("Phone (any format) or email").fill("(415) 555-2671")
    await page.get_by_role("button", name="Look up").click()
    await expect(page.get_by_text("/products/trail-boots")).to_be_visible()


async def test_a_signed_inbound_call_pops_the_callers_panel_in_an_open_console(
    live: LiveConsole, acme: RetailerClient, context: Any, tmp_path: Path
) -> None:
    ana = await add_agent(acme, "ana")
    await abandon_cart(acme)
    page = await context.new_page()
    await sign_in(page, live, ana)

    path = f"/v1/webhooks/twilio/{acme.id}/voice-inbound"
    form = {"CallSid": "CA" + "7" * 32, "From": "+14155552671", "To": "+14155550000"}
    signature = RequestValidator(live.twilio_auth_token).compute_signature(
        live.base_url + path, form
    )
    async with httpx.AsyncClient(base_url=live.base_url) as twilio:
        forged = await twilio.post(path, data=form, headers={"X-Twilio-Signature": "forged"})
        assert forged.status_code == 403
        await expect(page.locator("[data-screen-pop]")).to_have_count(0)
        sent_at = time.monotonic()
        answer = await twilio.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    assert "<Enqueue>default</Enqueue>" in answer.text

    pop = page.locator(f'[data-screen-pop="{form["CallSid"]}"]')
    await expect(pop.get_by_role("heading", name=re.compile("Incoming call: Ana"))).to_be_visible()
    # A figure for the README, not an assertion: how long the panel took to appear.
    print(f"screen pop visible {time.monotonic() - sent_at:.3f}s after the webhook was sent")
    await expect(pop.get_by_text(f"1 {TIMES} Trail boots EU 42")).to_be_visible()
    await expect(pop.get_by_text("/products/trail-boots")).to_be_visible()
    await page.screenshot(path=shot(tmp_path, "console-screen-pop.png"))
    await pop.get_by_role("button", name=re.compile("^Dismiss")).click()
    await expect(pop).to_have_count(0)

    # A call another API process took: nothing rings this process's bell, the poll finds it.
    async with live.stack.sessions() as session:
        retailer = await session.get(Retailer, acme.id)
        assert retailer is not None
        sent_at = time.monotonic()
        await record_inbound_call(
            session, retailer=retailer, call_sid="CA" + "8" * 32, caller="415 555 2671", at=utcnow()
        )
        await session.commit()
    other = page.locator(f'[data-screen-pop="{"CA" + "8" * 32}"]')
    await expect(
        other.get_by_role("heading", name=re.compile("Incoming call: Ana"))
    ).to_be_visible()
    print(f"screen pop from another process visible {time.monotonic() - sent_at:.3f}s after")


async def test_forms_without_the_csrf_token_and_other_retailers_tasks_are_refused(
    live: LiveConsole, acme: RetailerClient, new_context: Callable[[], Awaitable[Any]]
) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    other = await live.stack.retailer("Other")

    async def key_works() -> bool:  # the API commits after it answers (see the report)
        return (await other.get("/v1/agents")).status_code == 200

    await eventually(key_works, what="the new retailer's API key")
    eve = await add_agent(other, "eve", is_supervisor=True)

    page = await (await new_context()).new_page()
    await sign_in(page, live, ana)
    # The session cookie rides along, but the CSRF token does not: refused, nothing changes.
    forged = await page.request.post(
        f"{live.base_url}/console/tasks/{task['id']}/claim", form={"csrf_token": "forged"}
    )
    assert forged.status == 403
    assert (await ana.task(task["id"]))["status"] == "open"

    spy = await (await new_context()).new_page()
    await sign_in(spy, live, eve)
    await spy.goto(f"{live.base_url}/console?view=all")
    await expect(spy.get_by_text("No tasks here.")).to_be_visible()
    await spy.goto(f"{live.base_url}/console/tasks/{task['id']}")
    await expect(spy.get_by_role("heading", name="Not found")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto(f"{live.base_url}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_on_a_tablet_the_task_and_its_customer_stack_and_nothing_scrolls_sideways(
    live: LiveConsole, acme: RetailerClient, new_context: Callable[..., Awaitable[Any]]
) -> None:
    ana = await add_agent(acme, "ana")
    task = await open_call_task(acme, ana)
    tablet = await new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = await tablet.new_page()
    await sign_in(page, live, ana)
    await row(page, task).get_by_role("button", name=re.compile("^Claim")).tap()
    await expect(row(page, task).locator(".state")).to_have_text("Yours")
    await row(page, task).get_by_role("link").tap()
    await expect(page.get_by_label("What happened?")).to_be_visible()
    panel = page.locator("[data-customer-panel]")
    await expect(panel).to_be_visible()
    form_box = await page.locator("#complete-form").bounding_box()
    panel_box = await panel.bounding_box()
    assert form_box is not None and panel_box is not None
    assert panel_box["y"] > form_box["y"]  # one column: the panel under the form
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    button = await page.get_by_role("button", name=re.compile("^Complete")).bounding_box()
    assert button is not None and button["height"] >= 44  # a finger-sized target


async def test_a_supervisor_sees_the_escalation_in_the_inbox_and_the_supervisor_view(
    live: LiveConsole, acme: RetailerClient, context: Any, tmp_path: Path
) -> None:
    ana = await add_agent(acme, "ana")
    sue = await add_agent(acme, "sue", is_supervisor=True, email="sue@acme.example")
    queue = await acme.put("/v1/queues/default", {"supervisor_id": "sue"})
    assert queue.status_code in (200, 201), queue.text
    task = await open_call_task(acme, ana)
    page = await context.new_page()
    await sign_in(page, live, sue)
    await page.get_by_role("link", name=re.compile("^All")).click()
    await expect(row(page, task)).to_be_visible()
    await expect(row(page, task).get_by_text("Overdue")).to_have_count(0)

    await live.stack.env.sleep(timedelta(hours=5))  # past the 4 h SLA
    await expect(row(page, task).get_by_text("Escalated")).to_be_visible()  # live, no reload
    await expect(row(page, task).get_by_text("Overdue")).to_be_visible()

    await page.get_by_role("link", name="Supervisor").click()
    load = page.get_by_role("region", name="Queue load")
    await expect(load.get_by_role("row", name=re.compile("^default"))).to_contain_text("sue")
    await expect(page.get_by_role("region", name="Escalations")).to_contain_text("level 1")
    await expect(page.get_by_role("region", name="Past SLA")).to_contain_text(task["title"])
    await page.screenshot(path=shot(tmp_path, "console-supervisor.png"))
