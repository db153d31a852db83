"""The held-out guard: a cart in the holdout group has every due step recorded as ``held_out``
(what, when, which channel and step) and nothing reaches a provider, the outbox, an agent or the
storefront. Held-out records are not touches: no frequency cap, no credit for the order."""

from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import col, select
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.events import CartEventIn, record_event
from winback.carts.holdout import HELD_OUT, TREATED
from winback.carts.models import Cart
from winback.carts.nudges import pending_nudges
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.carts.types import GuardSpec, OfferNudgeInput, SendStepInput, StepSpec
from workflows.vocabulary import MessageStatus

pytestmark = pytest.mark.both_databases
WORKFLOW_ID = "cart-shop-c1"
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EMAIL = StepSpec(
    index=1, channel="email", delay_seconds=3600, template="cart_reminder", discount_code="SAVE5"
)
SMS = StepSpec(index=2, channel="sms", delay_seconds=7200, template="cart_sms")
CALL = StepSpec(index=3, channel="agent_call", delay_seconds=86400)
NUDGE = StepSpec(index=0, channel="onsite", template="onsite_help", offer=["chat", "callback"])


async def _seed(
    sessions: SessionFactory, webhook_url: str | None = None, group: str = HELD_OUT
) -> None:
    async with session_scope(sessions) as session:
        shop = Retailer(id="shop", name="Shop", webhook_secret="s", webhook_url=webhook_url)
        session.add(shop)
        await session.flush()
        event = CartEventIn.model_validate(
            {
                "event_id": "e1",
                "type": "item_added",
                "items": items(50.0),
                "customer": SHOPPER,
                "consent": ALL_CONSENT,
            }
        )
        recorded = await record_event(session, retailer=shop, cart_id="c1", event=event)
        recorded.cart.holdout_bucket, recorded.cart.holdout_group = 0, group
        session.add(recorded.cart)


def _input(step: StepSpec, at: datetime = NOON, cap: int | None = None) -> SendStepInput:
    return SendStepInput(
        workflow_id=WORKFLOW_ID,
        retailer_id="shop",
        cart_id="c1",
        step=step,
        guards=GuardSpec(quiet_start="21:00", quiet_end="08:00", cap_max_messages=cap),
        at=at,
    )


async def _messages(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message).order_by(col(Message.id)))).all())


def _sendgrid(httpserver: HTTPServer) -> SendGridEmailAdapter:
    return SendGridEmailAdapter(
        api_key="SG.test-key",
        from_email="shop@example.com",
        base_url=httpserver.url_for("").rstrip("/"),
    )


async def test_a_held_out_step_is_recorded_and_never_reaches_the_provider(
    sessions: SessionFactory, httpserver: HTTPServer
) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {"email": _sendgrid(httpserver)}, Settings())
    env = ActivityEnvironment()

    first = await env.run(messaging.send_step, _input(EMAIL))
    again = await env.run(messaging.send_step, _input(EMAIL))  # a retried activity

    assert (first.outcome, first.reason) == ("skipped", "held_out")
    assert (again.outcome, again.reason, again.message_id) == (
        "skipped",
        "held_out",
        first.message_id,
    )
    assert httpserver.log == []  # SendGrid's stand-in got no request at all
    [row] = await _messages(sessions)
    assert (row.status, row.channel, row.step_index, row.template) == (
        "held_out",
        "email",
        1,
        "cart_reminder",
    )
    assert row.created_at == NOON and row.sent_at is None and row.provider is None
    assert row.to_address == SHOPPER["email"] and row.discount_code == "SAVE5"
    assert row.subject and "Item 0" in row.body  # what would have been sent


async def test_held_out_records_do_not_count_against_the_frequency_cap(
    sessions: SessionFactory,
) -> None:
    """With a cap of one message, a second step is still held out, not capped: the first
    record was never a message to the shopper."""
    await _seed(sessions)
    outbox = OutboxAdapter()
    messaging = MessagingActivities(sessions, {"email": outbox, "sms": outbox}, Settings())
    env = ActivityEnvironment()

    first = await env.run(messaging.send_step, _input(EMAIL, cap=1))
    second = await env.run(messaging.send_step, _input(SMS, NOON + timedelta(hours=1), cap=1))

    assert [first.reason, second.reason] == ["held_out", "held_out"]
    rows = await _messages(sessions)
    assert [(m.channel, m.status) for m in rows] == [("email", "held_out"), ("sms", "held_out")]
    assert not any(m.status in MessageStatus.WENT_OUT for m in rows)  # nothing in the outbox


async def test_a_held_out_agent_call_opens_no_task_and_is_recorded(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {}, Settings())
    step = _input(CALL)
    step.key_suffix = "-call-1"

    result = await ActivityEnvironment().run(messaging.check_step, step)

    assert (result.outcome, result.reason) == ("skipped", "held_out")  # not READY: no task
    [row] = await _messages(sessions)
    assert (row.channel, row.status, row.dedupe_key) == (
        "agent_call",
        "held_out",
        f"{WORKFLOW_ID}/step-3-call-1",
    )


async def test_a_held_out_cart_gets_no_on_site_nudge_polled_or_pushed(
    sessions: SessionFactory, httpserver: HTTPServer
) -> None:
    await _seed(sessions, webhook_url=httpserver.url_for("/nudges"))
    messaging = MessagingActivities(sessions, {}, Settings(allow_loopback_urls=True))
    nudge = OfferNudgeInput(
        workflow_id=WORKFLOW_ID,
        retailer_id="shop",
        cart_id="c1",
        step=NUDGE,
        reason="exit_intent",
        at=NOON,
    )

    result = await ActivityEnvironment().run(messaging.offer_nudge, nudge)
    again = await ActivityEnvironment().run(messaging.offer_nudge, nudge)

    assert (result.pushed, again.pushed) == (False, False)
    assert httpserver.log == []
    async with sessions() as session:
        assert await pending_nudges(session, retailer_id="shop", cart_id="c1") == []
    [row] = await _messages(sessions)
    assert (row.channel, row.status) == ("onsite", "held_out")


@pytest.mark.parametrize(("group", "credited"), [(HELD_OUT, None), (TREATED, "email")])
async def test_an_order_after_a_held_out_step_is_credited_to_no_touch(
    sessions: SessionFactory, group: str, credited: str | None
) -> None:
    """The same cart, email and order: treated, the order is the email's; held out, nobody's."""
    await _seed(sessions, group=group)
    now = datetime.now(UTC)
    messaging = MessagingActivities(sessions, {"email": OutboxAdapter()}, Settings())
    await ActivityEnvironment().run(messaging.send_step, _input(EMAIL, now - timedelta(hours=2)))
    async with session_scope(sessions) as session:
        shop = await session.get(Retailer, "shop")
        assert shop is not None
        order = CartEventIn.model_validate(
            {
                "event_id": "e2",
                "type": "order_placed",
                "order": {"order_id": "o-1", "value": 50.0},
                "occurred_at": (now - timedelta(minutes=1)).isoformat(),
            }
        )
        await record_event(session, retailer=shop, cart_id="c1", event=order)
    async with sessions() as session:
        cart = (await session.exec(select(Cart))).one()
    assert cart.status == "ordered"
    assert cart.recovered_channel == credited
