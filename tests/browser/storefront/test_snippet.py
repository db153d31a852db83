"""winback.js in a real browser: the demo store's nudge on exit intent and on idle (phone-sized),
the callback form that opens an agent task, CORS for other origins, what a publishable key
cannot read, and a page that keeps working when Winback is down."""

import re
from collections.abc import Callable
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.browser.storefront.conftest import Live, Store, free_port
from tests.support.api import eventually
from winback.retailers.demo import demo_credentials

NUDGE_TIMEOUT = 20_000  # ms: the worker offers the nudge; expect() waits for it to be seen


async def leave_through_the_top(page: Page) -> None:
    """The desktop exit intent: the pointer crosses the top edge of the viewport."""
    await page.mouse.move(500, 200)
    await page.mouse.move(500, 5, steps=5)
    await page.mouse.move(500, -20, steps=2)


async def add_two_sizes(page: Page) -> None:
    await page.get_by_label("Size").first.select_option("41")
    await page.get_by_role("button", name="Add Trail runner to cart").click()
    await page.get_by_label("Size").first.select_option("42")
    await page.get_by_role("button", name="Add Trail runner to cart").click()
    await expect(page.get_by_text("Cart: 2 items")).to_be_visible()


async def test_exit_intent_on_the_demo_page_shows_the_nudge(
    live: Live, page: Page, screenshot: Callable[..., Any]
) -> None:
    await page.goto(f"{live.url}/demo/shop?min_time=0")
    await add_two_sizes(page)
    await leave_through_the_top(page)

    dialog = page.get_by_role("dialog", name="Can we help?")
    await expect(dialog).to_be_visible(timeout=NUDGE_TIMEOUT)
    await expect(dialog).to_contain_text("Need a hand choosing?")
    chat = dialog.get_by_role("button", name="Chat with us")
    await expect(chat).to_be_focused()
    await expect(dialog.get_by_role("button", name="Call me back")).to_be_visible()
    await screenshot(page, "nudge-desktop")

    # The focus stays in the dialog: Tab from the last button comes back to the first.
    await page.keyboard.press("Shift+Tab")
    await expect(dialog.get_by_role("button", name="No thanks")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(chat).to_be_focused()

    await page.keyboard.press("Escape")  # closes it, and tells Winback "dismiss"
    await expect(dialog).to_be_hidden()
    api_key, _ = demo_credentials(live.settings)
    async with live.http() as http:
        cart_id = await page.evaluate("window.winback.cart.id()")

        async def replied() -> bool:
            cart = await http.get(f"/v1/carts/{cart_id}", headers={"X-API-Key": api_key})
            return cart.json()["messages"][0]["reply"] == "dismiss"

        await eventually(replied, what="the dismiss reply")


async def test_the_callback_form_opens_the_agents_task(
    live: Live, page: Page, screenshot: Callable[..., Any]
) -> None:
    await page.goto(f"{live.url}/demo/shop?min_time=0")
    await add_two_sizes(page)
    await leave_through_the_top(page)
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Call me back").click(timeout=NUDGE_TIMEOUT)

    phone = dialog.get_by_label("Your phone number")
    await expect(phone).to_be_focused()
    await dialog.get_by_role("button", name="Call me").click()  # nothing typed yet
    await expect(dialog.get_by_role("alert")).to_have_text(re.compile("check the number"))
    await phone.fill("(415) 555-2671")
    await dialog.get_by_label(re.compile("call me at this number")).check()
    await screenshot(page, "nudge-callback-form")
    await dialog.get_by_role("button", name="Call me").click()
    await expect(dialog.get_by_role("status")).to_have_text(re.compile("will call you shortly"))

    _, agent_token = demo_credentials(live.settings)
    async with live.http() as http:

        async def tasks() -> list[dict[str, Any]]:
            answer = await http.get("/v1/tasks", headers={"X-Agent-Token": agent_token})
            return list(answer.json())

        found = await eventually(tasks, what="the callback task")
        task = (
            await http.get(f"/v1/tasks/{found[0]['id']}", headers={"X-Agent-Token": agent_token})
        ).json()
        assert task["kind"] == "callback"
        assert task["details"]["callback_phone"] == "+14155552671"
        assert [i["sku"] for i in task["details"]["items"]] == ["trail-41", "trail-42"]
        lookup = await http.get(
            "/v1/customers/lookup",
            params={"phone": "415 555 2671"},
            headers={"X-Agent-Token": agent_token},
        )
        assert lookup.status_code == 200, lookup.text
        assert lookup.json()["callback_carts"][0]["items"][1]["sku"] == "trail-42"


async def test_idle_on_a_phone_sized_screen_shows_the_nudge(
    live: Live, context: BrowserContext, screenshot: Callable[..., Any]
) -> None:
    phone = await context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=1,
    )
    page = await phone.new_page()
    await page.goto(f"{live.url}/demo/shop?min_time=0&idle=1")
    await page.get_by_role("button", name="Add City sneaker to cart").tap()

    dialog = page.get_by_role("dialog", name="Can we help?")
    await expect(dialog).to_be_visible(timeout=NUDGE_TIMEOUT)
    box = await dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    call = dialog.get_by_role("button", name="Call me back")
    call_box = await call.bounding_box()
    assert call_box is not None and call_box["height"] >= 44  # a finger-sized target
    await screenshot(page, "nudge-phone")
    await dialog.get_by_role("button", name="No thanks").tap()
    await expect(dialog).to_be_hidden()
    await phone.close()


async def test_back_on_a_phone_offers_help_before_leaving(
    live: Live, context: BrowserContext
) -> None:
    phone = await context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await phone.new_page()
    await page.goto(f"{live.url}/demo/shop?min_time=0&idle=600")
    await page.get_by_role("button", name="Add Hiking boot to cart").tap()
    await expect(page.get_by_text("Cart: 1 item", exact=True)).to_be_visible()
    await page.go_back(wait_until="commit")  # the first "back" stays on the page, and asks
    await expect(page.get_by_role("dialog", name="Can we help?")).to_be_visible(
        timeout=NUDGE_TIMEOUT
    )
    assert page.url.startswith(f"{live.url}/demo/shop")
    await phone.close()


async def test_a_fast_flick_to_the_top_on_a_phone_offers_help(
    live: Live, context: BrowserContext
) -> None:
    phone = await context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 640}, is_mobile=True, has_touch=True
    )
    page = await phone.new_page()
    await page.goto(f"{live.url}/demo/shop?min_time=0&idle=600")
    await page.get_by_role("button", name="Add Trail runner to cart").tap()
    await expect(page.get_by_text("Cart: 1 item", exact=True)).to_be_visible()
    # Down, then a flick back up (reaching for the address bar), both inside the page so the
    # flick's speed is the page's and not the test driver's round trips.
    await page.evaluate(
        """async () => {
            window.scrollTo(0, document.body.scrollHeight);
            await new Promise((done) => setTimeout(done, 150));
            window.scrollTo(0, 0);
        }"""
    )
    await expect(page.get_by_role("dialog", name="Can we help?")).to_be_visible(
        timeout=NUDGE_TIMEOUT
    )
    await phone.close()


async def test_a_page_on_an_origin_the_key_does_not_allow_is_refused(
    live: Live, store: Store, page: Page
) -> None:
    shop = await live.retailer("socks", [store.origin])
    # The same store page, but served as http://localhost:<port>: another origin.
    await page.goto(store.url(host="localhost", key=shop["key"], api=live.url, script=live.url))
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_text("1 items")).to_be_visible()  # the store still works
    refused = await page.evaluate(
        """async ([api, key]) => {
            try {
              await fetch(api + "/v1/client/carts/x1/events?key=" + key, {method: "POST",
                headers: {"Content-Type": "application/json",
                          "X-Winback-Visitor": "0123456789abcdef0123"},
                body: JSON.stringify({event_id: "e1", type: "activity"})});
              return "allowed";
            } catch (err) { return err.name; }
        }""",
        [live.url, shop["key"]],
    )
    assert refused == "TypeError"  # the browser's CORS refusal
    async with live.http() as http:
        carts = await http.get("/v1/outbox", headers={"X-API-Key": shop["api_key"]})
        assert carts.status_code == 200
        none = await http.get("/v1/carts/x1", headers={"X-API-Key": shop["api_key"]})
        assert none.status_code == 404  # nothing was written

    # From the allowed origin the same call goes through.
    await page.goto(store.url(key=shop["key"], api=live.url, script=live.url))
    allowed = await page.evaluate(
        """async ([api, key]) => {
            const r = await fetch(api + "/v1/client/carts/x2/events?key=" + key, {method: "POST",
                headers: {"Content-Type": "application/json",
                          "X-Winback-Visitor": "0123456789abcdef0123"},
                body: JSON.stringify({event_id: "e2", type: "activity"})});
            return r.status;
        }""",
        [live.url, shop["key"]],
    )
    assert allowed == 202


async def test_the_key_cannot_read_another_cart_or_any_personal_data(
    live: Live, store: Store, page: Page
) -> None:
    shop = await live.retailer("hats", [store.origin])
    async with live.http() as http:  # the retailer's backend knows this shopper
        headers = {"X-API-Key": shop["api_key"]}
        for event in (
            {
                "event_id": "b1",
                "type": "item_added",
                "items": [{"sku": "H1", "name": "Hat", "price": 20}],
                "customer": {"email": "ana@example.com", "phone": "+14155552671"},
            },
            {"event_id": "b2", "type": "exit_intent"},
        ):
            answer = await http.post("/v1/carts/victim/events", headers=headers, json=event)
            assert answer.status_code == 202, answer.text

        async def nudged() -> bool:
            return bool((await http.get("/v1/carts/victim/nudges", headers=headers)).json())

        await eventually(nudged, what="the victim's nudge")

    await page.goto(store.url(key=shop["key"], api=live.url, script=live.url))
    seen = await page.evaluate(
        """async ([api, key]) => {
            const headers = {"X-Winback-Visitor": "attacker-0123456789abcdef"};
            const out = {};
            const nudge = await fetch(api + "/v1/client/carts/victim/nudge?key=" + key, {headers});
            out.nudge = await nudge.text();
            for (const path of ["/v1/carts/victim", "/v1/carts/victim/nudges",
                                "/v1/customers/lookup?email=ana@example.com", "/v1/outbox"]) {
              try {
                const r = await fetch(api + path + (path.includes("?") ? "&" : "?") + "key=" + key,
                                      {headers: {"X-API-Key": key}});
                out[path] = await r.text();
              } catch (err) { out[path] = err.name; }
            }
            return out;
        }""",
        [live.url, shop["key"]],
    )
    assert seen["nudge"] == '{"nudge":null}'  # like a cart with nothing waiting
    answers = {path: body for path, body in seen.items() if path != "nudge"}
    assert set(answers.values()) == {"TypeError"}  # no CORS: the page cannot even read the 401
    assert "ana@example.com" not in seen["nudge"] and "4155552671" not in seen["nudge"]


async def test_the_page_still_works_when_winback_is_down(
    live: Live, store: Store, page: Page
) -> None:
    shop = await live.retailer("gloves", [store.origin])
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if r.url.startswith(dead) else None)

    # The snippet loads, but the API it talks to is down.
    await page.goto(store.url(key=shop["key"], api=dead, script=live.url))
    await expect(page.locator("script[src*='winback.js']")).to_have_count(1)
    await page.wait_for_function("window.winback && window.winback.version === '1'")
    for n in (1, 2, 3):
        await page.get_by_role("button", name="Add to cart").click()
        await expect(page.get_by_text(f"{n} items")).to_be_visible()
    await leave_through_the_top(page)
    await expect(page.get_by_role("dialog")).to_have_count(0)
    assert len(calls) <= 2, calls  # one failure, then it stays quiet instead of retrying

    # The snippet itself cannot load: the store does not notice.
    await page.goto(store.url(key=shop["key"], api=dead, script=dead))
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_text("1 items")).to_be_visible()
    assert await page.evaluate("typeof window.winback") == "undefined"


async def test_the_consent_hook_holds_tracking_until_the_shopper_agrees(
    live: Live, store: Store, page: Page
) -> None:
    shop = await live.retailer("scarves", [store.origin])
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/v1/client/" in r.url else None)
    await page.goto(store.url(key=shop["key"], api=live.url, script=live.url, consent="required"))
    await page.wait_for_function("window.winback && window.winback.version === '1'")
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_text("1 items")).to_be_visible()
    assert calls == []  # nothing sent
    assert await page.evaluate("document.cookie") == ""  # and no cookie set

    await page.evaluate("window.winback.consent(true)")  # the cookie banner's "accept"
    await page.get_by_role("button", name="Add to cart").click()
    await page.wait_for_function("document.cookie.includes('winback_id=')")
    async with live.http() as http:
        cart_id = await page.evaluate("window.winback.cart.id()")

        async def tracked() -> bool:
            cart = await http.get(f"/v1/carts/{cart_id}", headers={"X-API-Key": shop["api_key"]})
            return cart.status_code == 200 and len(cart.json()["items"]) == 2

        await eventually(tracked, what="the cart after consent")


async def test_leaving_on_a_phone_sends_the_exit_intent_as_a_beacon(
    live: Live, context: BrowserContext
) -> None:
    """The page going hidden on a phone (app switch, tab close): the exit intent leaves by
    ``navigator.sendBeacon`` to the batch route, text/plain and no custom header, so no CORS
    preflight has to finish before the page is gone."""
    phone = await context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await phone.new_page()
    beacons: list[Any] = []
    page.on("request", lambda r: beacons.append(r) if "events:batch" in r.url else None)
    await page.goto(f"{live.url}/demo/shop?min_time=0&idle=600")
    await page.get_by_role("button", name="Add Hiking boot to cart").tap()
    await expect(page.get_by_text("Cart: 1 item", exact=True)).to_be_visible()
    cart_id = await page.evaluate("window.winback.cart.id()")
    await page.evaluate(
        """() => {
          Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    await eventually(lambda: _async(bool(beacons)), what="the beacon")
    beacon = beacons[0]
    assert beacon.method == "POST"
    assert beacon.headers["content-type"].startswith("text/plain")
    assert "x-winback-visitor" not in beacon.headers
    assert '"exit_intent"' in (beacon.post_data or "")
    api_key, _ = demo_credentials(live.settings)
    async with live.http() as http:

        async def started() -> bool:
            cart = await http.get(f"/v1/carts/{cart_id}", headers={"X-API-Key": api_key})
            return cart.json()["workflow_id"] is not None

        await eventually(started, what="the exit intent to start the cart's workflow")
    await phone.close()


async def _async(value: bool) -> bool:
    return value
