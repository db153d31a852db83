"""Small builders shared by the tests."""

from typing import Any

SHOPPER = {
    "email": "ana@example.com",
    "phone": "+1 415 555 2671",
    "name": "Ana García",
    "timezone": "UTC",
}
ALL_CONSENT = {"email": True, "sms": True, "voice": True}


def items(*prices: float, product: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "sku": f"SKU-{i}",
            "name": f"Item {i}",
            "price": price,
            "quantity": 1,
            **({"product_id": product} if product else {}),
        }
        for i, price in enumerate(prices)
    ]


def cadence(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A cadence with no quiet hours unless a test asks for them."""
    return {"quiet_hours": {"start": "00:00", "end": "00:00"}, "steps": list(steps), **extra}
