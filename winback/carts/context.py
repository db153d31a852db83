"""Loads a cart with its retailer and shopper, always scoped to one retailer."""

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.platform.db import lock_on_sqlite
from winback.retailers.models import Retailer


@dataclass
class CartContext:
    retailer: Retailer
    cart: Cart
    customer: Customer | None

    @property
    def cart_url(self) -> str:
        return cart_link(self.retailer, self.cart)


def cart_link(retailer: Retailer, cart: Cart) -> str:
    """The link back to the cart in every message: the platform's own (a Shopify checkout's
    recovery URL) when the cart came with one, else the retailer's template."""
    return cart.link_url or retailer.cart_url_template.replace("{cart_id}", cart.cart_id)


async def load_cart_context(
    session: AsyncSession, retailer_id: str, cart_id: str, *, for_update: bool = False
) -> CartContext | None:
    """``for_update``: the cart row stays as read until the caller's transaction commits (an
    order placed meanwhile waits, then the next guard sees it), on both databases."""
    where = (Cart.retailer_id == retailer_id, Cart.cart_id == cart_id)
    query = select(Cart).where(*where)
    if for_update:
        await lock_on_sqlite(session, Cart, *where)
        query = query.with_for_update()
    cart = (await session.exec(query)).first()
    if cart is None:
        return None
    retailer = await session.get(Retailer, retailer_id)
    assert retailer is not None
    customer = await session.get(Customer, cart.customer_id) if cart.customer_id else None
    return CartContext(retailer=retailer, cart=cart, customer=customer)
