"""The cart-recovery journey on the time-skipping server: days of cadence in milliseconds."""


from tests.conftest import Stack
from tests.helpers import ALL_CONSENT, SHOPPER, items


async def test_happy_path_runs_the_default_cadence_to_expiry(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event(
        "c1", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c1", "exit_intent")

    result = await retailer.result("c1")

    assert result.stage == "expired"
    sent = await retailer.outbox()
    assert [(m["channel"], m["template"]) for m in sent] == [
        ("onsite", "onsite_help"),
        ("email", "cart_reminder"),
        ("sms", "cart_sms"),
        ("email", "cart_last_chance"),
    ]
    email = sent[1]
    assert email["to_address"] == "ana@example.com"
    assert "Item 0" in email["body"] and "https://shop.example.com/cart/c1" in email["body"]
    assert sent[2]["to_address"] == "+14155552671"
    skipped = [s for s in result.steps if s.outcome == "skipped"]
    assert [(s.channel, s.reason) for s in skipped] == [("voice", "cart value 120.00 below 200.00")]
