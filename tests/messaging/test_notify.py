"""Notifications (an agent's reminder, a case owner's alert) take the shopper messages' send
path: a worker killed mid-send never strands one in ``sending`` and never notifies twice."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.feedback.cases import CaseActivities
from activities.messaging.notify import Recipient, notify
from winback.messaging.channels import OutgoingMessage, SendReceipt, TransientSendError
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.retailers.models import Retailer
from workflows.feedback.types import AlertOwnerInput, Contact
from workflows.vocabulary import MessageStatus

pytestmark = pytest.mark.both_databases
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AGENT = Recipient("Ada", email="ada@shop.example", phone="+14155550100")
KEY = "task-1/reminder"


class WorkerDied(BaseException):
    """What a killed worker looks like from inside: nothing after this line runs."""


class Provider:
    """A stand-in provider (as SendGrid: nothing to ask) that logs what reaches it and can
    die mid-call, after the message reached it (``reached``) or before."""

    name = "fake"

    def __init__(self, *, reached: bool = False) -> None:
        self.delivered: list[OutgoingMessage] = []
        self.crash = False
        self.reached = reached

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.crash:
            if self.reached:
                self.delivered.append(message)
            raise WorkerDied
        self.delivered.append(message)
        return SendReceipt(provider=self.name, provider_message_id=f"p-{len(self.delivered)}")


class Lookup(Provider):
    """One that can be asked what it took, as Twilio's message list can."""

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        found = any(m.message_id == message.message_id for m in self.delivered)
        return SendReceipt(provider=self.name, provider_message_id="p-found") if found else None


async def _seed(sessions: SessionFactory) -> None:
    async with session_scope(sessions) as session:
        session.add(Retailer(id="shop", name="Shop", webhook_secret="s"))


async def _notify(sessions: SessionFactory, adapter: object) -> bool:
    return await notify(
        sessions,
        {"email": adapter},  # type: ignore[dict-item]
        "shop",
        AGENT,
        "email",
        KEY,
        "Due soon: call Jo",
        "The task is due at 12:30.",
        NOON,
    )


async def _rows(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message))).all())


async def _crash(sessions: SessionFactory, adapter: Provider) -> Message:
    adapter.crash = True
    with pytest.raises(WorkerDied):
        await _notify(sessions, adapter)
    adapter.crash = False
    [row] = await _rows(sessions)
    assert row.status == MessageStatus.SENDING and row.claimed_at is not None
    return row


async def _age_claim(sessions: SessionFactory, by: timedelta) -> None:
    """As if the retry came ``by`` later (no sleeping in tests)."""
    async with session_scope(sessions) as session:
        row = (await session.exec(select(Message))).one()
        assert row.claimed_at is not None
        row.claimed_at -= by
        session.add(row)


async def test_notifying_twice_sends_once(sessions: SessionFactory) -> None:
    await _seed(sessions)
    adapter = Provider()

    assert await _notify(sessions, adapter) and await _notify(sessions, adapter)

    assert len(adapter.delivered) == 1
    [row] = await _rows(sessions)
    assert (row.status, row.provider_message_id, row.dedupe_key) == ("sent", "p-1", KEY)


async def test_a_retry_right_after_a_crash_waits_rather_than_guess(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = Lookup()
    await _crash(sessions, adapter)

    with pytest.raises(ApplicationError) as unsettled:
        await _notify(sessions, adapter)

    assert unsettled.value.type == "SendUnsettled" and not unsettled.value.non_retryable
    assert adapter.delivered == []
    [row] = await _rows(sessions)
    assert row.status == MessageStatus.SENDING


async def test_a_crashed_notification_the_provider_has_is_marked_sent_not_sent_again(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = Lookup(reached=True)
    await _crash(sessions, adapter)  # it reached the provider before the worker died
    await _age_claim(sessions, timedelta(minutes=1))

    assert await _notify(sessions, adapter)

    assert len(adapter.delivered) == 1
    [row] = await _rows(sessions)
    assert (row.status, row.provider_message_id) == ("sent", "p-found")
    assert row.resolution == "found at fake (p-found) after a crash"


async def test_a_crashed_notification_the_provider_never_got_is_sent_again_once(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = Lookup()
    await _crash(sessions, adapter)
    await _age_claim(sessions, timedelta(minutes=1))

    assert await _notify(sessions, adapter) and await _notify(sessions, adapter)

    assert len(adapter.delivered) == 1
    [row] = await _rows(sessions)
    assert row.status == "sent" and row.resolution == "not at fake after a crash: sent again"


async def test_without_a_lookup_the_email_waits_for_the_event_grace_then_goes_again(
    sessions: SessionFactory,
) -> None:
    """SendGrid has no list to ask: no event for the message within the grace, it goes again."""
    await _seed(sessions)
    adapter = Provider()
    await _crash(sessions, adapter)
    await _age_claim(sessions, timedelta(seconds=20))

    with pytest.raises(ApplicationError, match="no fake event yet"):
        await _notify(sessions, adapter)
    await _age_claim(sessions, timedelta(minutes=1))
    assert await _notify(sessions, adapter)

    assert len(adapter.delivered) == 1
    [row] = await _rows(sessions)
    assert row.status == "sent"
    assert row.resolution == "no fake event within 60s of a crashed attempt: sent again"


async def test_a_transient_failure_releases_the_claim_so_the_retry_sends(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)

    class Flaky(Provider):
        async def send(self, message: OutgoingMessage) -> SendReceipt:
            raise TransientSendError("503 from the provider")

    with pytest.raises(ApplicationError) as failure:
        await _notify(sessions, Flaky())
    assert failure.value.type == "ProviderUnavailable" and not failure.value.non_retryable
    assert await _rows(sessions) == []

    adapter = Provider()
    assert await _notify(sessions, adapter)
    assert len(adapter.delivered) == 1


async def test_the_outbox_writes_the_notification_sent_in_the_claim_itself(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)

    assert await _notify(sessions, OutboxAdapter())

    [row] = await _rows(sessions)
    assert (row.status, row.provider, row.provider_message_id, row.sent_at) == (
        "sent",
        "outbox",
        f"outbox-{row.id}",
        NOON,
    )
    assert row.claimed_at is not None


async def test_the_owners_alert_heartbeats_and_is_settled_by_its_retry(
    sessions: SessionFactory,
) -> None:
    """The activity itself: it heartbeats (so the workflow's heartbeat timeout retries a killed
    worker's attempt within seconds), and its retry settles the claim the crash left."""
    await _seed(sessions)
    adapter = Lookup()
    cases = CaseActivities(sessions, {"email": adapter})  # type: ignore[dict-item]
    alert = AlertOwnerInput(
        retailer_id="shop",
        case_id=7,
        workflow_id="case-shop-7",
        owner=Contact(name="Ada", email="ada@shop.example"),
        severity="warm",
        summary="Jo answered 3",
        at=NOON,
    )
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    adapter.crash = True
    with pytest.raises(WorkerDied):
        await env.run(cases.alert_owner, alert)
    adapter.crash = False
    await _age_claim(sessions, timedelta(minutes=1))
    assert await env.run(cases.alert_owner, alert) == ["email"]

    assert beats, "the activity never heartbeat"
    assert len(adapter.delivered) == 1
    [row] = await _rows(sessions)
    assert (row.status, row.dedupe_key) == ("sent", "case-shop-7/alert-email")
    assert row.resolution == "not at fake after a crash: sent again"
