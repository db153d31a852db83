"""Abandonment without a workflow re-read: the first follow-up's activity and the sweep.

The workflow sleeps until the first step would be due had the shopper left at the last activity
it knows of; the step's activity judges from the row (``winback.carts.abandonment``). The
worker's sweep marks idle carts in SQL meanwhile. Both backdate ``abandoned_at`` to the last
activity + ``abandon_after``: the funnel and the "contacted within 24 h" figures read it.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.abandonment import mark_idle_carts_abandoned
from winback.carts.events import CartEventIn, record_event
from winback.carts.models import Cart
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.carts.types import GuardSpec, OfferNudgeInput, SendStepInput, StepSpec
from workflows.vocabulary import CartStatus, StepOutcome

pytestmark = pytest.mark.both_databases
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ABANDON_AFTER = timedelta(minutes=30)  # the default cadence's
GRACE = timedelta(minutes=3)
EMAIL = StepSpec(index=1, channel="email", delay_seconds=3600, template="cart_reminder")


async def _cart(sessions: SessionFactory, last_activity: datetime, started: bool = True) -> None:
    async with session_scope(sessions) as session:
        shop = Retailer(id="shop", name="Shop", webhook_secret="s")
        session.add(shop)
        await session.flush()
        event = CartEventIn.model_validate(
            {
                "event_id": "e1",
                "type": "item_added",
                "occurred_at": last_activity.isoformat(),
                "items": items(50.0),
                "customer": SHOPPER,
                "consent": ALL_CONSENT,
            }
        )
        recorded = await record_event(session, retailer=shop, cart_id="c1", event=event)
        recorded.cart.workflow_started = started
        recorded.cart.cadence_version = 0 if started else None
        session.add(recorded.cart)


async def _row(sessions: SessionFactory) -> Cart:
    async with sessions() as session:
        return (await session.exec(select(Cart))).one()


def _first_email(at: datetime) -> SendStepInput:
    return SendStepInput(
        workflow_id="cart-shop-c1",
        retailer_id="shop",
        cart_id="c1",
        step=EMAIL,
        guards=GuardSpec(quiet_start="00:00", quiet_end="00:00"),
        at=at,
        abandon_after_seconds=int(ABANDON_AFTER.total_seconds()),
        abandon_grace_seconds=int(GRACE.total_seconds()),
    )


def _messaging(sessions: SessionFactory) -> MessagingActivities:
    return MessagingActivities(sessions, {"email": OutboxAdapter()}, Settings())


async def test_the_first_email_marks_an_idle_cart_abandoned_backdated_and_goes(
    sessions: SessionFactory,
) -> None:
    last = NOON - ABANDON_AFTER - timedelta(hours=1)
    await _cart(sessions, last)

    result = await ActivityEnvironment().run(_messaging(sessions).send_step, _first_email(NOON))

    assert result.outcome == StepOutcome.SENT
    assert result.abandoned_at == last + ABANDON_AFTER
    row = await _row(sessions)
    assert (row.status, row.abandoned_at) == (CartStatus.ABANDONED, last + ABANDON_AFTER)


async def test_a_shopper_busy_since_gets_not_due_and_nothing_is_sent(
    sessions: SessionFactory,
) -> None:
    last = NOON - timedelta(minutes=10)  # edits the workflow never heard of
    await _cart(sessions, last)

    result = await ActivityEnvironment().run(_messaging(sessions).send_step, _first_email(NOON))

    assert (result.outcome, result.abandoned_at) == (StepOutcome.NOT_DUE, None)
    assert result.retry_at == last + ABANDON_AFTER + timedelta(hours=1)
    assert (await _row(sessions)).status == CartStatus.ACTIVE
    async with sessions() as session:
        assert (await session.exec(select(Message))).all() == []


async def test_a_cart_abandoned_later_than_it_looked_is_marked_and_the_email_waits(
    sessions: SessionFactory,
) -> None:
    last = NOON - timedelta(minutes=40)  # idle for 30 minutes since 11:50: abandoned then
    await _cart(sessions, last)

    result = await ActivityEnvironment().run(_messaging(sessions).send_step, _first_email(NOON))

    assert result.outcome == StepOutcome.NOT_DUE
    assert result.abandoned_at == last + ABANDON_AFTER
    assert result.retry_at == last + ABANDON_AFTER + timedelta(hours=1)
    assert (await _row(sessions)).status == CartStatus.ABANDONED


async def test_the_sweep_marks_idle_started_carts_abandoned_backdated(
    sessions: SessionFactory,
) -> None:
    last = NOON - timedelta(minutes=45)
    await _cart(sessions, last)

    assert await mark_idle_carts_abandoned(sessions, now=last + ABANDON_AFTER / 2) == 0
    assert (await _row(sessions)).status == CartStatus.ACTIVE
    assert await mark_idle_carts_abandoned(sessions, now=NOON) == 1
    assert await mark_idle_carts_abandoned(sessions, now=NOON) == 0  # once

    row = await _row(sessions)
    assert (row.status, row.abandoned_at) == (CartStatus.ABANDONED, last + ABANDON_AFTER)
    # The first email, when its timer fires, finds the same time and goes when it is due.
    result = await ActivityEnvironment().run(
        _messaging(sessions).send_step, _first_email(last + ABANDON_AFTER + timedelta(hours=1))
    )
    assert (result.outcome, result.abandoned_at) == (StepOutcome.SENT, last + ABANDON_AFTER)


async def test_the_sweep_leaves_carts_without_a_journey_alone(sessions: SessionFactory) -> None:
    await _cart(sessions, NOON - timedelta(hours=5), started=False)

    assert await mark_idle_carts_abandoned(sessions, now=NOON) == 0


async def test_no_nudge_for_a_shopper_who_has_left(sessions: SessionFactory) -> None:
    """The workflow cannot tell whether the shopper is still there (it does not hear minor
    edits); the nudge activity can, and offers nothing to a cart idle past the threshold."""
    await _cart(sessions, NOON - timedelta(hours=1))
    nudge = StepSpec(index=0, channel="onsite", template="onsite_help")

    def offer(idle_since: datetime) -> OfferNudgeInput:
        return OfferNudgeInput("cart-shop-c1", "shop", "c1", nudge, "idle", NOON, idle_since)

    gone = await ActivityEnvironment().run(
        _messaging(sessions).offer_nudge, offer(NOON - ABANDON_AFTER + GRACE)
    )
    here = await ActivityEnvironment().run(
        _messaging(sessions).offer_nudge, offer(NOON - timedelta(hours=2))
    )

    assert gone.message_id is None
    assert here.message_id is not None
