"""A cart's status changes are conditional: a write based on an old read never undoes an order."""

from datetime import timedelta

import pytest

from winback.carts.models import Cart
from winback.carts.transitions import mark_abandoned
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory
from winback.retailers.models import Retailer
from workflows.vocabulary import CartStatus

pytestmark = pytest.mark.both_databases


async def test_an_abandonment_check_that_read_an_active_cart_leaves_a_later_order_alone(
    sessions: SessionFactory,
) -> None:
    idle_since = utcnow() - timedelta(hours=1)
    async with sessions() as setup:
        setup.add(Retailer(id="r1", name="Acme", webhook_secret="s"))
        await setup.flush()
        cart = Cart(retailer_id="r1", cart_id="c1", last_activity_at=idle_since)
        setup.add(cart)
        await setup.commit()
        assert cart.id is not None

    async with sessions() as checker:
        seen = await checker.get(Cart, cart.id)
        assert seen is not None and seen.status == CartStatus.ACTIVE
        await checker.commit()  # the check read the cart, then took its time (a crash, a retry)

        async with sessions() as api:
            bought = await api.get(Cart, cart.id)
            assert bought is not None
            bought.status, bought.ordered_at = CartStatus.ORDERED, utcnow()
            await api.commit()

        changed = await mark_abandoned(checker, cart_pk=cart.id, idle_since=utcnow(), at=utcnow())
        await checker.commit()

    async with sessions() as reader:
        final = await reader.get(Cart, cart.id)
    assert changed is False
    assert final is not None and (final.status, final.abandoned_at) == (CartStatus.ORDERED, None)


async def test_an_idle_active_cart_is_abandoned_once(sessions: SessionFactory) -> None:
    async with sessions() as session:
        session.add(Retailer(id="r2", name="Acme", webhook_secret="s"))
        await session.flush()
        cart = Cart(retailer_id="r2", cart_id="c1", last_activity_at=utcnow() - timedelta(hours=1))
        session.add(cart)
        await session.commit()
        assert cart.id is not None
        at = utcnow()
        first = await mark_abandoned(session, cart_pk=cart.id, idle_since=at, at=at)
        again = await mark_abandoned(session, cart_pk=cart.id, idle_since=at, at=at)
        await session.commit()
    assert (first, again) == (True, False)
