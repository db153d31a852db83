"""WooCommerce's order webhooks, read as the end of a cart's journey.

WooCommerce has no cart webhook: the storefront's ``winback.js`` tracks the cart itself (with its
own cart id). An ``order.created`` or ``order.updated`` whose order is paid (``processing``,
``completed``, or any status with ``date_paid``) ends that cart as bought. The order finds the
cart by the cart id the snippet put in the order (order meta ``_winback_cart_id``), else by the
billing email: the shopper's most recent open cart.

When a webhook is saved, WooCommerce posts a form-encoded ``webhook_id=<id>`` ping, unsigned;
it is answered and changes nothing.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from winback.carts.events import CART_ID_PATTERN, CartEventIn, OrderIn
from winback.integrations import fields

WOOCOMMERCE = "woocommerce"
TOPICS = ("order.created", "order.updated")
PAID_STATUSES = frozenset({"processing", "completed"})
UNPAID_STATUSES = frozenset({"pending", "failed", "cancelled", "refunded", "checkout-draft"})
CART_ID_META_KEYS = ("_winback_cart_id", "winback_cart_id")
_CART_ID = re.compile(CART_ID_PATTERN)
_PING = re.compile(r"^webhook_id=\d+$")


@dataclass(frozen=True)
class WooOrder:
    order_id: str
    value: float
    paid: bool
    cart_id: str | None
    email: str | None
    occurred_at: datetime | None


def is_ping(body: bytes) -> bool:
    """WooCommerce's test delivery when a webhook is created: ``webhook_id=<id>``, form-encoded."""
    return bool(_PING.fullmatch(body.decode("utf-8", "replace").strip()))


def order_from_payload(payload: dict[str, Any]) -> WooOrder:
    status = (fields.text(payload.get("status")) or "").lower().removeprefix("wc-")
    paid = status in PAID_STATUSES or (
        bool(payload.get("date_paid") or payload.get("date_paid_gmt"))
        and status not in UNPAID_STATUSES
    )
    return WooOrder(
        order_id=(
            fields.text(payload.get("id")) or fields.text(payload.get("number")) or "unknown"
        )[:200],
        value=fields.amount(payload.get("total")),
        paid=paid,
        cart_id=_cart_id(payload.get("meta_data")),
        email=fields.email((payload.get("billing") or {}).get("email"))
        if isinstance(payload.get("billing"), dict)
        else None,
        occurred_at=_gmt(payload.get("date_paid_gmt") or payload.get("date_created_gmt")),
    )


def order_event(order: WooOrder) -> CartEventIn:
    """One event per order, whichever webhook (created or updated) reports it paid first."""
    return CartEventIn(
        event_id=f"woocommerce:order:{order.order_id}",
        type="order_placed",
        occurred_at=order.occurred_at,
        order=OrderIn(order_id=order.order_id, value=order.value),
    )


def _cart_id(meta: Any) -> str | None:
    for entry in meta if isinstance(meta, list) else []:
        if isinstance(entry, dict) and entry.get("key") in CART_ID_META_KEYS:
            value = fields.text(entry.get("value"))
            if value and _CART_ID.fullmatch(value):
                return value
    return None


def _gmt(value: Any) -> datetime | None:
    """WooCommerce's ``*_gmt`` dates carry no offset: they are UTC."""
    if isinstance(value, str) and value and not value.endswith(("Z", "+00:00")):
        try:
            return fields.when(datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat())
        except ValueError:
            return None
    return fields.when(value)
