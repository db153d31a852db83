"""Which platform checkout a Winback cart came from, so the platform's order finds its cart.

Shopify's order carries the checkout's ``token`` (``checkout_token``), its ``id``
(``checkout_id``) and the storefront ``cart_token``; any of them links the order to the cart
made from that checkout.
"""

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


class PlatformCartLink(SQLModel, table=True):
    __tablename__ = "platform_cart_link"
    __table_args__ = (UniqueConstraint("retailer_id", "platform", "checkout_token"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    platform: str = Field(max_length=20)
    cart_id: str = Field(max_length=128, index=True)
    checkout_token: str = Field(max_length=200)
    checkout_id: str | None = Field(default=None, max_length=100, index=True)
    cart_token: str | None = Field(default=None, max_length=200, index=True)


async def link_checkout(
    session: AsyncSession,
    *,
    retailer_id: str,
    platform: str,
    cart_id: str,
    checkout_token: str,
    checkout_id: str | None,
    cart_token: str | None,
) -> None:
    """Records (or completes) the link; a later update may bring the id or cart token."""
    row = (
        await session.exec(
            select(PlatformCartLink).where(
                PlatformCartLink.retailer_id == retailer_id,
                PlatformCartLink.platform == platform,
                PlatformCartLink.checkout_token == checkout_token,
            )
        )
    ).first() or PlatformCartLink(
        retailer_id=retailer_id, platform=platform, cart_id=cart_id, checkout_token=checkout_token
    )
    row.checkout_id = checkout_id or row.checkout_id
    row.cart_token = cart_token or row.cart_token
    session.add(row)
    await session.flush()


async def find_linked_cart(
    session: AsyncSession,
    *,
    retailer_id: str,
    platform: str,
    checkout_token: str | None,
    checkout_id: str | None,
    cart_token: str | None,
) -> str | None:
    """The cart id of the checkout an order came from, by token, then id, then cart token."""
    for column, value in (
        (PlatformCartLink.checkout_token, checkout_token),
        (PlatformCartLink.checkout_id, checkout_id),
        (PlatformCartLink.cart_token, cart_token),
    ):
        if not value:
            continue
        row = (
            await session.exec(
                select(PlatformCartLink)
                .where(
                    PlatformCartLink.retailer_id == retailer_id,
                    PlatformCartLink.platform == platform,
                    column == value,
                )
                .order_by(col(PlatformCartLink.id).desc())
            )
        ).first()
        if row is not None:
            return row.cart_id
    return None
