"""The per-customer frequency cap across carts: whichever send takes the customer's lock second
counts the first one's message, whatever the two steps' times.

Each step carries its workflow's time, not the clock's, so two carts' sends can reach the
database in the opposite order to their times. The cap once counted only messages up to the
send's own time, and a second cart whose step was scheduled a moment earlier than the first's
went out too (``test_frequency_cap_holds_across_carts_of_one_shopper`` failed 1 to 3 runs in
12; this test failed on SQLite and PostgreSQL alike)."""

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.events import CartEventIn, record_event
from winback.carts.holdout import TREATED
from winback.messaging.channels.outbox import OutboxAdapter
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.carts.types import GuardSpec, SendStepInput, StepSpec

pytestmark = pytest.mark.both_databases
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EMAIL = StepSpec(index=1, channel="email", delay_seconds=3600, template="cart_reminder")


async def _seed_two_carts_of_one_shopper(sessions: SessionFactory) -> None:
    async with session_scope(sessions) as session:
        shop = Retailer(id="shop", name="Shop", webhook_secret="s")
        session.add(shop)
        await session.flush()
        for cart_id in ("c1", "c2"):
            event = CartEventIn.model_validate(
                {
                    "event_id": f"e-{cart_id}",
                    "type": "item_added",
                    "items": items(50.0),
                    "customer": SHOPPER,
                    "consent": ALL_CONSENT,
                }
            )
            recorded = await record_event(session, retailer=shop, cart_id=cart_id, event=event)
            recorded.cart.holdout_bucket, recorded.cart.holdout_group = 99, TREATED
            session.add(recorded.cart)


def _email(cart_id: str, at: datetime) -> SendStepInput:
    return SendStepInput(
        workflow_id=f"cart-shop-{cart_id}",
        retailer_id="shop",
        cart_id=cart_id,
        step=EMAIL,
        guards=GuardSpec(quiet_start="21:00", quiet_end="08:00", cap_max_messages=1),
        at=at,
    )


async def test_a_send_timed_earlier_counts_a_message_claimed_with_a_later_time(
    sessions: SessionFactory,
) -> None:
    await _seed_two_carts_of_one_shopper(sessions)
    outbox = OutboxAdapter()
    messaging = MessagingActivities(sessions, {"email": outbox}, Settings())
    env = ActivityEnvironment()

    later = await env.run(messaging.send_step, _email("c2", NOON + timedelta(seconds=30)))
    earlier = await env.run(messaging.send_step, _email("c1", NOON))

    assert later.outcome == "sent"
    assert earlier.outcome == "skipped"
    assert (earlier.reason or "").startswith("frequency cap: 1 messages")
