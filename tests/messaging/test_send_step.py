"""The send activity on its own: idempotent, guarded, and honest about failures."""

from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.discount_models import DiscountCode
from winback.carts.events import CartEventIn, record_event
from winback.messaging.channels import OutgoingMessage, SendReceipt, TransientSendError
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.models import Message, Suppression
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from workflows.carts.types import GuardSpec, SendStepInput, StepSpec
from workflows.vocabulary import MessageStatus

pytestmark = pytest.mark.both_databases
WORKFLOW_ID = "cart-shop-c1"
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class WorkerDied(BaseException):
    """What a killed worker looks like from inside: nothing after this line runs."""


class CountingAdapter:
    """A stand-in provider that counts what reaches it (and can fail the first calls)."""

    name = "counting"

    def __init__(self, fail_first: int = 0, crash: bool = False) -> None:
        self.delivered: list[OutgoingMessage] = []
        self.fail_first = fail_first
        self.crash = crash

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.crash:
            raise WorkerDied  # the worker dies mid-call: no chance to record anything
        if self.fail_first:
            self.fail_first -= 1
            raise TransientSendError("503 from the provider")
        self.delivered.append(message)
        return SendReceipt(provider=self.name, provider_message_id=f"p-{len(self.delivered)}")


async def _seed(sessions: SessionFactory) -> None:
    async with session_scope(sessions) as session:
        shop = Retailer(id="shop", name="Shop", webhook_secret="s")
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
        await record_event(session, retailer=shop, cart_id="c1", event=event)


def _input(step: StepSpec) -> SendStepInput:
    return SendStepInput(
        workflow_id=WORKFLOW_ID,
        retailer_id="shop",
        cart_id="c1",
        step=step,
        guards=GuardSpec(quiet_start="21:00", quiet_end="08:00"),
        at=NOON,
    )


EMAIL = StepSpec(index=1, channel="email", delay_seconds=3600, template="cart_reminder")


async def _messages(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message))).all())


async def test_running_the_send_twice_sends_once(sessions: SessionFactory) -> None:
    await _seed(sessions)
    adapter = CountingAdapter()
    messaging = MessagingActivities(sessions, {"email": adapter}, Settings())
    env = ActivityEnvironment()

    first = await env.run(messaging.send_step, _input(EMAIL))
    second = await env.run(messaging.send_step, _input(EMAIL))

    assert (first.outcome, second.outcome) == ("sent", "sent")
    assert second.reason == "already sent" and second.message_id == first.message_id
    assert len(adapter.delivered) == 1
    [row] = await _messages(sessions)
    assert (row.status, row.dedupe_key, row.provider_message_id) == (
        "sent",
        f"{WORKFLOW_ID}/step-1",
        "p-1",
    )


async def test_a_transient_failure_releases_the_claim_so_the_retry_sends(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = CountingAdapter(fail_first=1)
    messaging = MessagingActivities(sessions, {"email": adapter}, Settings())
    env = ActivityEnvironment()

    with pytest.raises(ApplicationError) as failure:
        await env.run(messaging.send_step, _input(EMAIL))
    assert failure.value.type == "ProviderUnavailable" and not failure.value.non_retryable
    assert await _messages(sessions) == []

    retried = await env.run(messaging.send_step, _input(EMAIL))
    assert retried.outcome == "sent" and len(adapter.delivered) == 1


class LookupAdapter(CountingAdapter):
    """A provider that can be asked what it took (as Twilio's message list can)."""

    def __init__(self, already: list[OutgoingMessage] | None = None) -> None:
        super().__init__()
        self.already = already or []

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        found = [m for m in self.already if m.message_id == message.message_id]
        return SendReceipt(provider=self.name, provider_message_id="p-before") if found else None


async def _crash_mid_send(sessions: SessionFactory) -> Message:
    """The first attempt claims the step and dies in the provider call."""
    with pytest.raises(WorkerDied):
        await ActivityEnvironment().run(
            MessagingActivities(
                sessions, {"email": CountingAdapter(crash=True)}, Settings()
            ).send_step,
            _input(EMAIL),
        )
    [claimed] = await _messages(sessions)
    assert claimed.status == MessageStatus.SENDING
    return claimed


async def _age_claim(sessions: SessionFactory, by: timedelta) -> None:
    """As if the retry came ``by`` later (no sleeping in tests)."""
    async with session_scope(sessions) as session:
        row = (await session.exec(select(Message))).one()
        assert row.claimed_at is not None
        row.claimed_at -= by
        session.add(row)


async def test_a_retry_right_after_a_crash_waits_rather_than_guess(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    await _crash_mid_send(sessions)
    adapter = LookupAdapter()

    with pytest.raises(ApplicationError) as unsettled:
        await ActivityEnvironment().run(
            MessagingActivities(sessions, {"email": adapter}, Settings()).send_step,
            _input(EMAIL),
        )

    assert unsettled.value.type == "SendUnsettled" and not unsettled.value.non_retryable
    assert adapter.delivered == []


async def test_a_crashed_send_the_provider_has_is_marked_sent_not_sent_again(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    claimed = await _crash_mid_send(sessions)
    await _age_claim(sessions, timedelta(minutes=1))
    assert claimed.id is not None
    adapter = LookupAdapter(already=[OutgoingMessage(claimed.id, "shop", "email", "x", "x")])

    retried = await ActivityEnvironment().run(
        MessagingActivities(sessions, {"email": adapter}, Settings()).send_step, _input(EMAIL)
    )

    assert retried.outcome == "sent" and adapter.delivered == []
    [row] = await _messages(sessions)
    assert (row.status, row.provider_message_id) == ("sent", "p-before")
    assert row.resolution == "found at counting (p-before) after a crash"


async def test_a_crashed_send_the_provider_never_got_is_sent_again_once(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    await _crash_mid_send(sessions)
    await _age_claim(sessions, timedelta(minutes=1))
    adapter = LookupAdapter()
    messaging = MessagingActivities(sessions, {"email": adapter}, Settings())

    retried = await ActivityEnvironment().run(messaging.send_step, _input(EMAIL))
    again = await ActivityEnvironment().run(messaging.send_step, _input(EMAIL))

    assert (retried.outcome, again.outcome, again.reason) == ("sent", "sent", "already sent")
    assert len(adapter.delivered) == 1
    [row] = await _messages(sessions)
    assert row.status == "sent" and row.resolution == "not at counting after a crash: sent again"


async def test_without_a_lookup_a_provider_event_for_the_message_settles_it(
    sessions: SessionFactory,
) -> None:
    """SendGrid: its event webhook carries our message id back (custom_args)."""
    from winback.messaging.provider_event_models import ProviderEvent

    await _seed(sessions)
    claimed = await _crash_mid_send(sessions)
    await _age_claim(sessions, timedelta(seconds=20))
    async with session_scope(sessions) as session:
        session.add(
            ProviderEvent(
                retailer_id="shop",
                provider="sendgrid",
                event_id="ev-1",
                type="processed",
                message_id=claimed.id,
                payload={"event": "processed", "sg_message_id": "sg-1"},
            )
        )
    adapter = CountingAdapter()

    retried = await ActivityEnvironment().run(
        MessagingActivities(sessions, {"email": adapter}, Settings()).send_step, _input(EMAIL)
    )

    assert retried.outcome == "sent" and adapter.delivered == []
    [row] = await _messages(sessions)
    assert (row.status, row.provider_message_id) == ("sent", "sg-1")
    assert row.resolution == "counting reported 'processed' for it after a crash"


async def test_without_a_lookup_or_an_event_the_send_waits_then_goes_again_with_the_reason(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    await _crash_mid_send(sessions)
    await _age_claim(sessions, timedelta(seconds=20))
    adapter = CountingAdapter()
    messaging = MessagingActivities(sessions, {"email": adapter}, Settings())

    with pytest.raises(ApplicationError, match="no counting event yet"):
        await ActivityEnvironment().run(messaging.send_step, _input(EMAIL))
    await _age_claim(sessions, timedelta(minutes=1))
    retried = await ActivityEnvironment().run(messaging.send_step, _input(EMAIL))

    assert retried.outcome == "sent" and len(adapter.delivered) == 1
    [row] = await _messages(sessions)
    assert row.resolution == "no counting event within 60s of a crashed attempt: sent again"


async def test_a_crashed_send_is_not_sent_again_after_a_purchase(sessions: SessionFactory) -> None:
    await _seed(sessions)
    await _crash_mid_send(sessions)
    await _age_claim(sessions, timedelta(minutes=1))
    async with session_scope(sessions) as session:
        shop = await session.get(Retailer, "shop")
        assert shop is not None
        order = CartEventIn.model_validate(
            {"event_id": "e2", "type": "order_placed", "order": {"order_id": "o1", "value": 50}}
        )
        await record_event(session, retailer=shop, cart_id="c1", event=order)
    adapter = LookupAdapter()

    retried = await ActivityEnvironment().run(
        MessagingActivities(sessions, {"email": adapter}, Settings()).send_step, _input(EMAIL)
    )

    assert (retried.outcome, retried.reason) == ("stopped", "ordered")
    assert adapter.delivered == []
    [row] = await _messages(sessions)
    assert row.status == "failed" and row.resolution is not None
    assert "ordered since a crashed attempt" in row.resolution


async def test_the_outbox_writes_the_message_sent_in_the_claim_itself(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {"email": OutboxAdapter()}, Settings())

    sent = await ActivityEnvironment().run(messaging.send_step, _input(EMAIL))

    [row] = await _messages(sessions)
    assert sent.outcome == "sent"
    assert (row.status, row.provider, row.provider_message_id, row.sent_at) == (
        "sent",
        "outbox",
        f"outbox-{row.id}",
        NOON,
    )


async def test_quiet_hours_postpone_an_sms_to_the_morning(sessions: SessionFactory) -> None:
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {"sms": OutboxAdapter()}, Settings())
    late = SendStepInput(
        **{
            **_input(StepSpec(index=2, channel="sms", template="cart_sms")).__dict__,
            "at": datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
        }
    )

    result = await ActivityEnvironment().run(messaging.send_step, late)

    assert result.outcome == "postponed"
    assert result.retry_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # the shopper is on UTC
    assert await _messages(sessions) == []


async def test_a_pool_code_is_drawn_once_per_step(sessions: SessionFactory) -> None:
    await _seed(sessions)
    async with session_scope(sessions) as session:
        session.add_all(
            DiscountCode(retailer_id="shop", pool="spring", code=c) for c in ("A-1", "A-2")
        )
    step = StepSpec(index=4, channel="email", template="cart_last_chance", discount_pool="spring")
    adapter = CountingAdapter()
    messaging = MessagingActivities(sessions, {"email": adapter}, Settings())
    env = ActivityEnvironment()

    await env.run(messaging.send_step, _input(step))
    await env.run(messaging.send_step, _input(step))

    [sent] = adapter.delivered
    assert "A-1" in sent.body
    async with sessions() as session:
        codes = {c.code: c.assigned_key for c in (await session.exec(select(DiscountCode)))}
    assert codes == {"A-1": f"{WORKFLOW_ID}/step-4", "A-2": None}


async def test_an_email_carries_a_one_click_unsubscribe_link_for_its_shopper(
    sessions: SessionFactory,
) -> None:
    from winback.messaging.unsubscribe import verify_token

    await _seed(sessions)
    adapter = CountingAdapter()
    await ActivityEnvironment().run(
        MessagingActivities(sessions, {"email": adapter}, Settings()).send_step, _input(EMAIL)
    )

    [sent] = adapter.delivered
    assert sent.unsubscribe_url is not None and "/v1/unsubscribe/" in sent.unsubscribe_url
    token = sent.unsubscribe_url.rsplit("/", 1)[1]
    target = verify_token(token)
    assert (target.retailer_id, target.channel) == ("shop", "email")


async def test_an_outage_outlasting_the_retries_is_recorded_on_the_message(
    sessions: SessionFactory,
) -> None:
    import dataclasses

    from workflows.carts.types import SEND_ATTEMPTS

    await _seed(sessions)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=SEND_ATTEMPTS)
    messaging = MessagingActivities(sessions, {"email": CountingAdapter(fail_first=1)}, Settings())

    with pytest.raises(ApplicationError) as failure:
        await env.run(messaging.send_step, _input(EMAIL))

    assert failure.value.non_retryable
    [row] = await _messages(sessions)
    assert row.status == MessageStatus.FAILED and "unavailable after 8 attempts" in (
        row.error or ""
    )


async def test_a_call_offers_press_1_and_reports_back_to_our_webhooks(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = CountingAdapter()
    call = StepSpec(index=3, channel="voice", template="cart_voice")

    await ActivityEnvironment().run(
        MessagingActivities(sessions, {"voice": adapter}, Settings()).send_step, _input(call)
    )

    [sent] = adapter.delivered
    assert sent.store_name == "Shop"
    assert sent.gather_url is not None
    assert sent.gather_url.endswith(
        f"/v1/webhooks/twilio/shop/voice-gather?message_id={sent.message_id}"
    )
    assert sent.status_callback_url is not None
    assert sent.status_callback_url.endswith("/v1/webhooks/twilio/shop/voice-status")


async def test_an_email_shows_its_unsubscribe_link_in_the_text_and_the_html(
    sessions: SessionFactory,
) -> None:
    await _seed(sessions)
    adapter = CountingAdapter()
    await ActivityEnvironment().run(
        MessagingActivities(sessions, {"email": adapter}, Settings()).send_step, _input(EMAIL)
    )

    [sent] = adapter.delivered
    assert sent.unsubscribe_url is not None
    assert sent.unsubscribe_url in sent.body
    assert sent.html is not None and f'href="{sent.unsubscribe_url}"' in sent.html
    [row] = await _messages(sessions)  # the outbox shows it too
    assert sent.unsubscribe_url in row.body and sent.unsubscribe_url in (row.html or "")


async def test_a_send_twilio_refuses_as_opted_out_suppresses_the_number(
    sessions: SessionFactory, httpserver: HTTPServer
) -> None:
    from winback.messaging.channels.twilio_channels import TwilioSmsAdapter

    account = "AC" + "0123456789abcdef" * 2
    httpserver.expect_oneshot_request(
        f"/2010-04-01/Accounts/{account}/Messages.json", method="POST"
    ).respond_with_json(
        {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400},
        status=400,
    )
    twilio = TwilioSmsAdapter(
        account_sid=account,
        auth_token="t",
        from_number="+15005550006",
        base_url=httpserver.url_for(""),
    )
    await _seed(sessions)
    messaging = MessagingActivities(sessions, {"sms": twilio}, Settings())
    sms = StepSpec(index=2, channel="sms", template="cart_sms")

    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(messaging.send_step, _input(sms))
    later = await ActivityEnvironment().run(
        messaging.send_step, _input(StepSpec(index=3, channel="sms", template="cart_sms"))
    )

    async with sessions() as session:
        suppressed = {(s.channel, s.address) for s in await session.exec(select(Suppression))}
    assert suppressed == {("sms", "+14155552671"), ("voice", "+14155552671")}
    assert later.outcome == "skipped"
    assert len(httpserver.log) == 1  # the later text never reached Twilio
