"""Shopify's checkout and order webhooks, read as Winback cart events.

A checkout becomes the same ``CartEventIn`` the storefront posts: the whole item snapshot (sku,
title and variant, price, quantity; the product id, so several variants of one product read as
the confused shopper), the shopper's contact and marketing consent, locale, currency, and the
checkout's ``abandoned_checkout_url`` as the link back in every message. The cart id comes from
the checkout's ``token``; its ``id`` and ``cart_token`` are kept so the order can find it.

Shopify has no "abandoned" event: the cart workflow's inactivity rule decides, as for any cart.
A checkout with ``completed_at``, or an order that names the checkout, is ``order_placed``.

Payloads are read defensively: a field Winback cannot use (a phone number like
``555-555-BILL``, an email that is not one, a date years ago) is dropped, never a reason to
refuse a delivery that Shopify would then retry for hours.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from winback.carts.events import CART_ID_PATTERN, CartEventIn, CartItem, OrderIn
from winback.customers.identity import ConsentIn, CustomerIn
from winback.integrations import fields

SHOPIFY = "shopify"
CART_PREFIX = "shopify-"
MAX_ITEMS = 500
CHECKOUT_TOPICS = ("checkouts/create", "checkouts/update")
ORDER_TOPICS = ("orders/create",)
PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
TOPICS = (*CHECKOUT_TOPICS, *ORDER_TOPICS, *PRIVACY_TOPICS)
_CART_ID = re.compile(CART_ID_PATTERN)


class PayloadError(ValueError):
    """The payload lacks what identifies it (a checkout without a token)."""


@dataclass(frozen=True)
class CheckoutEvents:
    """What one checkout webhook means for its cart."""

    cart_id: str
    checkout_token: str
    checkout_id: str | None
    cart_token: str | None
    events: list[CartEventIn]


@dataclass(frozen=True)
class ShopifyOrder:
    """An order, with what links it to the checkout it came from."""

    order: OrderIn
    checkout_token: str | None
    checkout_id: str | None
    cart_token: str | None
    cancelled: bool
    occurred_at: datetime | None


@dataclass(frozen=True)
class PrivacySubject:
    """Whom a privacy webhook is about (Shopify's customer id, email, phone) and its orders."""

    external_id: str | None
    email: str | None
    phone: str | None
    order_ids: list[str] = field(default_factory=list)
    request_id: str | None = None


def cart_id_for(token: str) -> str:
    """Winback's cart id for a checkout token; a token that would not fit is hashed."""
    candidate = f"{CART_PREFIX}{token}"
    if _CART_ID.fullmatch(candidate):
        return candidate
    return f"{CART_PREFIX}{hashlib.sha256(token.encode()).hexdigest()[:40]}"


def checkout_events(payload: dict[str, Any], *, delivery_id: str, country: str) -> CheckoutEvents:
    """The cart events of a ``checkouts/create`` or ``checkouts/update`` webhook."""
    token = fields.text(payload.get("token"))
    if not token:
        raise PayloadError("a checkout without a 'token'")
    cart_id = cart_id_for(token)
    occurred_at = fields.when(payload.get("updated_at") or payload.get("created_at"))
    snapshot = CartEventIn(
        event_id=f"shopify:{delivery_id}",
        type="checkout_started",
        occurred_at=occurred_at,
        items=_items(payload.get("line_items")),
        currency=fields.currency(payload.get("presentment_currency") or payload.get("currency")),
        cart_url=fields.link(payload.get("abandoned_checkout_url")),
        customer=_customer(payload, country),
        consent=_consent(payload),
    )
    events = [snapshot]
    if payload.get("completed_at"):
        order_id = fields.text(payload.get("order_id")) or f"checkout-{token}"
        events.append(
            CartEventIn(
                event_id=f"shopify:{delivery_id}:completed",
                type="order_placed",
                occurred_at=fields.when(payload.get("completed_at")) or occurred_at,
                order=OrderIn(
                    order_id=order_id[:200], value=fields.amount(payload.get("total_price"))
                ),
            )
        )
    return CheckoutEvents(
        cart_id=cart_id,
        checkout_token=token[:200],
        checkout_id=fields.text(payload.get("id")),
        cart_token=fields.text(payload.get("cart_token")),
        events=events,
    )


def order_from_payload(payload: dict[str, Any]) -> ShopifyOrder:
    """An ``orders/create`` webhook: the order and what links it to its checkout."""
    order_id = fields.text(payload.get("id")) or fields.text(payload.get("name")) or "unknown"
    return ShopifyOrder(
        order=OrderIn(order_id=order_id[:200], value=fields.amount(payload.get("total_price"))),
        checkout_token=fields.text(payload.get("checkout_token")),
        checkout_id=fields.text(payload.get("checkout_id")),
        cart_token=fields.text(payload.get("cart_token")),
        cancelled=bool(payload.get("cancelled_at")),
        occurred_at=fields.when(payload.get("processed_at") or payload.get("created_at")),
    )


def order_event(order: ShopifyOrder, *, delivery_id: str) -> CartEventIn:
    return CartEventIn(
        event_id=f"shopify:{delivery_id}",
        type="order_placed",
        occurred_at=order.occurred_at,
        order=order.order,
    )


def privacy_subject(payload: dict[str, Any], country: str) -> PrivacySubject:
    """The customer of ``customers/data_request`` or ``customers/redact``."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    assert isinstance(customer, dict)
    orders = payload.get("orders_to_redact") or payload.get("orders_requested") or []
    request = payload.get("data_request") if isinstance(payload.get("data_request"), dict) else {}
    assert isinstance(request, dict)
    return PrivacySubject(
        external_id=fields.text(customer.get("id")),
        email=fields.email(customer.get("email")),
        phone=fields.phone(customer.get("phone"), country),
        order_ids=[str(o) for o in orders if isinstance(o, (int, str))]
        if isinstance(orders, list)
        else [],
        request_id=fields.text(request.get("id")),
    )


def _items(lines: Any) -> list[CartItem]:
    items: list[CartItem] = []
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if not isinstance(line, dict) or len(items) >= MAX_ITEMS:
            continue
        title = (
            fields.text(line.get("title")) or fields.text(line.get("presentment_title")) or "Item"
        )
        variant = fields.text(line.get("variant_title"))
        name = f"{title} - {variant}" if variant and variant not in title else title
        variant_id = fields.text(line.get("variant_id"))
        sku = (
            fields.text(line.get("sku"))
            or (f"variant-{variant_id}" if variant_id else None)
            or f"line-{fields.text(line.get('key')) or index}"
        )
        quantity = line.get("quantity")
        items.append(
            CartItem(
                sku=sku[:200],
                name=name[:500],
                quantity=min(max(quantity, 1), 10000) if isinstance(quantity, int) else 1,
                price=fields.amount(line.get("price")),
                product_id=(fields.text(line.get("product_id")) or "")[:200] or None,
            )
        )
    return items


def _customer(payload: dict[str, Any], country: str) -> CustomerIn | None:
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    assert isinstance(customer, dict)
    billing = payload.get("billing_address")
    names = [fields.text(customer.get("first_name")), fields.text(customer.get("last_name"))]
    name = " ".join(n for n in names if n) or (
        fields.text(billing.get("name")) if isinstance(billing, dict) else None
    )
    email = fields.email(payload.get("email")) or fields.email(customer.get("email"))
    phone = (
        fields.phone(payload.get("phone"), country)
        or fields.phone(payload.get("sms_marketing_phone"), country)
        or fields.phone(customer.get("phone"), country)
    )
    locale = fields.text(payload.get("customer_locale"))
    external_id = fields.text(customer.get("id"))
    if not any((email, phone, name, external_id)):
        return None
    return CustomerIn(
        id=external_id[:200] if external_id else None,
        email=email,
        phone=phone,
        name=name[:200] if name else None,
        locale=locale[:20] if locale else None,
    )


def _consent(payload: dict[str, Any]) -> ConsentIn | None:
    """``buyer_accepts_marketing`` / ``buyer_accepts_sms_marketing`` (or the customer's
    marketing consent states when the checkout does not say)."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    assert isinstance(customer, dict)

    def state(key: str) -> bool | None:
        consent = customer.get(key)
        if isinstance(consent, dict) and isinstance(consent.get("state"), str):
            return bool(consent["state"] == "subscribed")
        return None

    email = payload.get("buyer_accepts_marketing")
    sms = payload.get("buyer_accepts_sms_marketing")
    given = ConsentIn(
        email=email if isinstance(email, bool) else state("email_marketing_consent"),
        sms=sms if isinstance(sms, bool) else state("sms_marketing_consent"),
    )
    return given if given.email is not None or given.sms is not None else None
