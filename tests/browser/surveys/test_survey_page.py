"""The hosted survey page in a real browser, phone-sized: the radio group is labelled and
works from the keyboard alone, a missing score is said out loud, the answer is recorded once and
a second visit shows "thank you". Screenshots: ``WINBACK_SCREENSHOTS=docs/screenshots``."""

import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import expect
from sqlmodel import select

from tests.browser.conftest import LiveConsole
from tests.conftest import RetailerClient
from winback.feedback.models import FeedbackAnswer

_SHOTS = os.environ.get("WINBACK_SCREENSHOTS")
SCREENSHOTS = Path(_SHOTS).resolve() if _SHOTS else None
PHONE = {"width": 390, "height": 844}
RULES = {
    "business_units": [
        {"id": "madrid", "name": "Madrid", "owner": {"name": "Olga", "email": "olga@a.test"}}
    ],
    "default_business_unit": "madrid",
}


async def survey_link(retailer: RetailerClient) -> str:
    made = await retailer.post(
        "/v1/surveys",
        {
            "idempotency_key": uuid.uuid4().hex,
            "channel": "link",
            "customer": {"email": "ana@example.com", "locale": "es-ES"},
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["url"])


def shot(tmp_path: Path, name: str) -> str:
    folder = SCREENSHOTS or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)


async def test_a_shopper_answers_on_a_phone_with_the_keyboard_once(
    live: LiveConsole, new_context: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    retailer = await live.stack.retailer("Sol", country="ES")
    renamed = await live.stack.api.patch(
        "/v1/retailer", json={"name": "Zapatería Sol"}, headers=retailer.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert (await retailer.put("/v1/alert-rules", RULES)).status_code == 201
    url = await survey_link(retailer)
    assert url.startswith(live.base_url + "/s/")

    context = await new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="es-ES"
    )
    page = await context.new_page()
    await page.goto(url)

    await expect(page.get_by_role("heading", name="¿Qué tal lo hicimos?")).to_be_visible()
    group = page.get_by_role("group", name="¿Qué probabilidad hay de que recomiende")
    await expect(group).to_be_visible()
    await expect(group.get_by_role("radio")).to_have_count(11)

    # Sending without a score: the page says so and puts the focus back on the scores.
    await page.get_by_role("button", name="Enviar mi respuesta").click()
    await expect(page.get_by_role("alert")).to_have_text("Elija una puntuación.")
    await expect(page.get_by_role("radio", name="0", exact=True)).to_be_focused()

    # Keyboard only, from the top of the page: Tab past the language link to the scores, arrows
    # move through them, Tab to the comment, Tab to the button, Enter sends.
    await page.goto(url)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="English")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("radio", name="0", exact=True)).to_be_focused()
    for _ in range(9):
        await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("radio", name="9", exact=True)).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("¿Quiere contarnos algo más? (opcional)")).to_be_focused()
    await page.keyboard.type("Muy amables en la tienda")
    await page.screenshot(path=shot(tmp_path, "survey-phone.png"), full_page=True)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Enviar mi respuesta")).to_be_focused()
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="¡Gracias!")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Hemos recibido su respuesta")
    await page.screenshot(path=shot(tmp_path, "survey-thanks-phone.png"))

    # A second visit, in English this time: thank you, no form.
    await page.goto(url + "?lang=en")
    await expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text(
        "You have already answered this survey. Thank you!"
    )
    await expect(page.get_by_role("radio")).to_have_count(0)

    async with live.stack.sessions() as session:
        query = select(FeedbackAnswer).where(FeedbackAnswer.retailer_id == retailer.id)
        [answer] = (await session.exec(query)).all()
    assert (answer.score, answer.comment, answer.channel) == (9, "Muy amables en la tienda", "web")
