"""Holdout groups: which carts Winback leaves alone, so the report can measure true lift.

A cadence's ``holdout_percent`` holds out that share of carts. The group is sticky per shopper:
a keyed hash (HMAC-SHA256 with the retailer's secret ``holdout_salt``) of the retailer and the
shopper's identity gives a bucket 0..9999, and buckets below ``holdout_percent x 100`` are held
out. The same shopper therefore lands in the same group on every cart, whatever the order of
events, and nobody without the salt can tell who is held out.

The group is decided once, when the cart could first be touched (a contact is known or an on-site
nudge is due) and before its workflow starts, and is written on the cart row; the send guards
and the report both read that column. A change of ``holdout_percent`` applies to carts decided
after it, never to carts already decided.
"""

import hashlib
import hmac
from typing import Final

from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.cadence_store import current_cadence
from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.retailers.lookups import RetailerIdentity
from winback.retailers.models import Retailer
from workflows.vocabulary import CartStatus

BUCKETS: Final = 10_000
TREATED: Final = "treated"
HELD_OUT: Final = "held_out"


def shopper_identity(cart: Cart, customer: Customer | None) -> str:
    """What makes "the same shopper": the customer row (one per shopper and retailer, matched on
    external id, email or phone), else the browser, else the cart itself."""
    customer_id = customer.id if customer is not None else None
    return shopper_key(customer_id, cart.visitor_hash, cart.cart_id)


def shopper_key(customer_id: int | None, visitor_hash: str | None, cart_id: str) -> str:
    """``shopper_identity`` from the columns (the ingestion batches hold no ORM rows)."""
    if customer_id is not None:
        return f"customer:{customer_id}"
    if visitor_hash:
        return f"visitor:{visitor_hash}"
    return f"cart:{cart_id}"


def is_touchable(status: str, has_contact: bool, nudge_reason: str | None) -> bool:
    """Whether a cart could be touched now, so its group is due (``decide_group``'s rule)."""
    if status in (CartStatus.ORDERED, CartStatus.OPTED_OUT):
        return False  # bought or opted out before any touch: in neither group, like its workflow
    return has_contact or bool(nudge_reason)


async def holdout_salt(session: AsyncSession, retailer: RetailerIdentity) -> str:
    """The retailer's secret salt (its id for a retailer that predates salts)."""
    row = retailer if isinstance(retailer, Retailer) else await session.get(Retailer, retailer.id)
    return (row.holdout_salt if row is not None else None) or retailer.id


def holdout_bucket(salt: str, retailer_id: str, identity: str) -> int:
    """0..9999, uniform and stable for one (retailer, shopper) under one salt."""
    digest = hmac.new(
        salt.encode(), f"{retailer_id}\x1f{identity}".encode(), hashlib.sha256
    ).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def group_for(bucket: int, holdout_percent: float) -> str | None:
    """The group of a bucket under a cadence's percentage; None when nothing is held out."""
    threshold = round(holdout_percent * BUCKETS / 100)
    if threshold <= 0:
        return None
    return HELD_OUT if bucket < threshold else TREATED


def is_held_out(cart: Cart) -> bool:
    return cart.holdout_group == HELD_OUT


async def decide_group(
    session: AsyncSession, retailer: RetailerIdentity, cart: Cart, customer: Customer | None
) -> bool:
    """Records the cart's bucket and group the first time it could be touched (once only);
    True if it did now."""
    if cart.holdout_bucket is not None or cart.workflow_started:
        return False
    contact = customer is not None and bool(customer.email or customer.phone)
    if not is_touchable(cart.status, contact, cart.nudge_reason):
        return False
    await assign_group(session, retailer, cart, customer)
    return True


async def assign_group(
    session: AsyncSession, retailer: RetailerIdentity, cart: Cart, customer: Customer | None
) -> None:
    """Writes the bucket and group from the shopper's identity and the current cadence."""
    cadence = await current_cadence(session, retailer_id=retailer.id)
    # The ingestion routes carry a cached ``RetailerRef`` (no salt): the row is read then, once
    # per cart at most (the group is decided once).
    salt = await holdout_salt(session, retailer)
    cart.holdout_bucket = holdout_bucket(salt, retailer.id, shopper_identity(cart, customer))
    cart.holdout_group = group_for(cart.holdout_bucket, cadence.holdout_percent)
