"""Activities that read and update the cart snapshot the API keeps."""

from temporalio import activity
from temporalio.exceptions import ApplicationError

from winback.carts.context import load_cart_context
from winback.carts.transitions import mark_abandoned
from winback.platform.db import SessionFactory, session_scope
from workflows.carts.types import CartSnapshot, RefreshCartInput
from workflows.errors import ErrorType
from workflows.vocabulary import CartStatus


class CartStoreActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    async def refresh_cart(self, input: RefreshCartInput) -> CartSnapshot:
        """The cart's latest activity and status; marks it abandoned if idle long enough."""
        async with session_scope(self._sessions) as session:
            ctx = await load_cart_context(session, input.retailer_id, input.cart_id)
            if ctx is None:
                raise ApplicationError(
                    f"cart {input.cart_id} of {input.retailer_id} does not exist",
                    type=ErrorType.UNKNOWN_CART,
                    non_retryable=True,
                )
            cart = ctx.cart
            assert cart.last_activity_at is not None and cart.id is not None
            # One conditional UPDATE: an order committed after our read is never overwritten.
            if cart.status == CartStatus.ACTIVE:
                await mark_abandoned(
                    session, cart_pk=cart.id, idle_since=input.abandon_if_idle_since, at=input.at
                )
                await session.refresh(cart)  # what the database holds now, whoever wrote it
            has_contact = ctx.customer is not None and bool(
                ctx.customer.email or ctx.customer.phone
            )
            return CartSnapshot(
                status=cart.status,
                last_activity_at=cart.last_activity_at,
                has_contact=has_contact,
                value=cart.value,
                abandoned_at=cart.abandoned_at,
            )
