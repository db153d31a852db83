"""Recording an agent's call, and (for CartRecoveryV4) closing its task in the same step."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities, _is_suppressed
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.events import CartEventIn, record_event
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from winback.tasks.models import HumanTask
from workflows.carts.types import RecordCallInput
from workflows.tasks.types import TaskChange

pytestmark = pytest.mark.both_databases
WORKFLOW_ID = "cart-shop-c1"
TASK_ID = f"{WORKFLOW_ID}/task-1"
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def _seed(sessions: SessionFactory) -> None:
    """A cart with a known shopper, and its call task claimed by ana (version 2)."""
    async with session_scope(sessions) as session:
        shop = Retailer(id="shop", name="Shop", webhook_secret="s")
        session.add(shop)
        await session.flush()
        event = CartEventIn.model_validate(
            {
                "event_id": "e1",
                "type": "item_added",
                "items": items(450.0),
                "customer": SHOPPER,
                "consent": ALL_CONSENT,
            }
        )
        await record_event(session, retailer=shop, cart_id="c1", event=event)
        session.add(
            HumanTask(
                id=TASK_ID,
                retailer_id="shop",
                workflow_id=WORKFLOW_ID,
                kind="call_shopper",
                title="Call the shopper of cart c1",
                queue="default",
                status="claimed",
                claimed_by="ana",
                cart_id="c1",
                due_at=NOON + timedelta(hours=4),
                version=2,
            )
        )


def _call(outcome: str, close: TaskChange | None) -> RecordCallInput:
    return RecordCallInput(
        workflow_id=WORKFLOW_ID,
        retailer_id="shop",
        cart_id="c1",
        task_id=TASK_ID,
        step_index=1,
        agent_id="ana",
        outcome=outcome,
        notes="Left a message.",
        at=NOON,
        close=close,
    )


def _done(outcome: str, version: int = 3) -> TaskChange:
    return TaskChange(
        task_id=TASK_ID,
        status="done",
        version=version,
        at=NOON,
        claimed_by="ana",
        outcome=outcome,
        notes="Left a message.",
    )


async def _task(sessions: SessionFactory) -> HumanTask:
    async with sessions() as session:
        task = await session.get(HumanTask, TASK_ID)
        assert task is not None
        return task


async def _calls(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message))).all())


async def test_the_call_and_its_closed_task_are_written_together_once(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {}, Settings())
    env = ActivityEnvironment()

    first = await env.run(messaging.record_call, _call("voicemail", _done("voicemail")))
    # A local activity retried after its write (a worker that died before reporting it).
    again = await env.run(messaging.record_call, _call("voicemail", _done("voicemail")))

    assert (first.outcome, first.reason) == ("sent", "voicemail")
    assert (again.reason, again.message_id) == ("already recorded", first.message_id)
    [call] = await _calls(sessions)
    assert (call.id, call.channel, call.reply, call.status) == (
        first.message_id,
        "agent_call",
        "voicemail",
        "sent",  # a voicemail reached the shopper
    )
    assert (call.to_address, call.provider, call.body) == (
        "+14155552671",
        "agent:ana",
        "Left a message.",
    )
    task = await _task(sessions)
    assert (task.status, task.outcome, task.claimed_by, task.version) == (
        "done",
        "voicemail",
        "ana",
        3,
    )
    assert (task.notes, task.completed_at) == ("Left a message.", NOON)


async def test_a_newer_state_of_the_task_is_kept(sessions: SessionFactory) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {}, Settings())

    await ActivityEnvironment().run(
        messaging.record_call, _call("voicemail", _done("voicemail", version=1))
    )

    task = await _task(sessions)
    assert (task.status, task.version) == ("claimed", 2)
    assert len(await _calls(sessions)) == 1  # the call itself is still recorded


async def test_a_wrong_number_is_suppressed_for_texts_and_calls(sessions: SessionFactory) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {}, Settings())

    await ActivityEnvironment().run(
        messaging.record_call, _call("wrong_number", _done("wrong_number"))
    )

    async with sessions() as session:
        for channel in ("sms", "voice"):
            assert await _is_suppressed(session, "shop", channel, "+14155552671")
    assert (await _task(sessions)).status == "done"
