"""Cart events from the shopper's browser (``winback.js``), turned into ordinary cart events.

The browser is not trusted the way the retailer's backend is: it may post only storefront
events (never ``order_placed`` or ``opt_out``: orders come from the backend or a platform
webhook), its contact fields count only when signed (``winback.customers.identity``), consent
counts only alongside a signed contact, and each cart belongs to the browser that first used it
(a hash of its first-party id), so one visitor can neither read nor write another's cart. What
passes is a ``CartEventIn`` for ``record_event``: one pipeline for every source.
"""

import hashlib
import re
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from winback.carts.events import CartEventIn, CartItem
from winback.carts.models import Cart
from winback.customers.identity import ConsentIn, CustomerIn
from winback.customers.signed_identity import ClientIdentity, TrustedIdentity, trusted_identity
from winback.platform.text_input import refuse_nul

ClientEventType = Literal[
    "item_added", "item_removed", "activity", "idle", "exit_intent", "checkout_started"
]
VISITOR_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")


class ClientEventIn(BaseModel):
    """One event from ``winback.js``. Times are the server's: browsers' clocks drift."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
    type: ClientEventType
    items: list[CartItem] | None = Field(default=None, max_length=500)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    page: str | None = Field(default=None, max_length=2000)
    identity: ClientIdentity | None = None
    consent: ConsentIn | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return refuse_nul(data)

    @model_validator(mode="after")
    def _items_with_item_events(self) -> Self:
        """Checked here, where the 422 can name the field, not later in ``CartEventIn``."""
        if self.type in ("item_added", "item_removed") and self.items is None:
            raise ValueError(f"'{self.type}' needs 'items': the whole cart after the change")
        return self


class ClientNudgeReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: Literal["chat", "callback", "dismiss"]
    phone: str | None = Field(
        default=None, max_length=40, description="callback: the number to call (any format)."
    )
    consent: bool = Field(
        default=False, description="callback: the shopper ticked the consent wording."
    )


def visitor_hash(visitor: str) -> str:
    return hashlib.sha256(visitor.encode()).hexdigest()


def owned_by(cart: Cart | None, visitor: str) -> bool:
    """A cart no browser has claimed yet (new, or made by the backend) is claimable."""
    return cart is None or cart.visitor_hash in (None, visitor_hash(visitor))


def to_cart_event(
    event: ClientEventIn, secret: str | None, *, event_prefix: str
) -> tuple[CartEventIn, TrustedIdentity | None]:
    """The event as ``record_event`` takes it, with only the trusted parts of the identity.

    Event ids are prefixed per visitor so that a browser cannot collide with (or replay) the
    backend's own event ids."""
    trusted = trusted_identity(event.identity, secret) if event.identity is not None else None
    customer = None
    if trusted is not None and trusted.fields:
        customer = CustomerIn(**trusted.fields)  # a bad signed email or phone: ValidationError
    consent = event.consent if trusted is not None and trusted.has_contact else None
    cart_event = CartEventIn(
        event_id=f"{event_prefix}:{event.event_id}"[:200],
        type=event.type,
        items=event.items,
        currency=event.currency,
        page=event.page,
        customer=customer,
        consent=consent,
    )
    return cart_event, trusted
