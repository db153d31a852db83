"""RetailerChannelRouter: a retailer's own SendGrid / Twilio account when it set one, the
defaults (here the outbox) otherwise; new settings apply to the next send."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.messaging.sends import MessagingActivities
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.events import CartEventIn, record_event
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.router import FixedRouter, RetailerChannelRouter, as_router
from winback.messaging.models import Message
from winback.platform.crypto import encrypt
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from winback.retailers.provider_settings import ProviderSettings
from workflows.carts.types import GuardSpec, SendStepInput, StepSpec

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EMAIL = StepSpec(index=1, channel="email", delay_seconds=3600, template="cart_reminder")
SMS = StepSpec(index=2, channel="sms", delay_seconds=3600, template="cart_sms")
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
KEY_SID = "SK" + "00112233445566778899aabbccddeeff"
SERVICE_SID = "MG" + "fedcba9876543210" * 2


def _settings(httpserver: HTTPServer) -> Settings:
    base = httpserver.url_for("").rstrip("/")
    return Settings(sendgrid_base_url=base, twilio_base_url=base)


async def _seed(sessions: SessionFactory, *retailers: str) -> None:
    async with session_scope(sessions) as session:
        for retailer_id in retailers:
            shop = Retailer(id=retailer_id, name=retailer_id.title(), webhook_secret="s")
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


async def _set_sendgrid(
    sessions: SessionFactory, settings: Settings, retailer_id: str, key: str, at: datetime
) -> None:
    async with session_scope(sessions) as session:
        row = await session.get(ProviderSettings, retailer_id) or ProviderSettings(
            retailer_id=retailer_id
        )
        row.sendgrid_api_key_enc = encrypt(settings, key)
        row.sendgrid_from_email, row.sendgrid_from_name = "hello@shop.example", "Shop"
        row.updated_at = at
        session.add(row)


def _input(retailer_id: str, step: StepSpec, workflow_id: str = "wf") -> SendStepInput:
    return SendStepInput(
        workflow_id=f"cart-{retailer_id}-c1-{workflow_id}",
        retailer_id=retailer_id,
        cart_id="c1",
        step=step,
        guards=GuardSpec(quiet_start="00:00", quiet_end="00:00"),
        at=NOON,
    )


async def _messages(sessions: SessionFactory, retailer_id: str) -> list[Message]:
    async with sessions() as session:
        query = select(Message).where(Message.retailer_id == retailer_id)
        return list((await session.exec(query)).all())


async def test_a_retailer_with_its_own_sendgrid_key_sends_through_it(
    sessions: SessionFactory, httpserver: HTTPServer, sendgrid_contract
) -> None:
    settings = _settings(httpserver)
    await _seed(sessions, "shop", "plain")
    await _set_sendgrid(sessions, settings, "shop", "SG.shop-own-key", NOON)
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data(
        "", status=202, headers={"X-Message-Id": "sg-1"}
    )
    router = RetailerChannelRouter(sessions, settings, {"email": OutboxAdapter()})
    messaging = MessagingActivities(sessions, router, Settings())
    env = ActivityEnvironment()

    own = await env.run(messaging.send_step, _input("shop", EMAIL))
    default = await env.run(messaging.send_step, _input("plain", EMAIL))

    assert (own.outcome, default.outcome) == ("sent", "sent")
    [(request, _)] = httpserver.log  # only the retailer with keys reached SendGrid
    sendgrid_contract(request)
    assert request.headers["Authorization"] == "Bearer SG.shop-own-key"
    body = request.get_json()
    assert body["from"] == {"email": "hello@shop.example", "name": "Shop"}
    assert body["personalizations"][0]["to"] == [{"email": SHOPPER["email"]}]
    [sent] = await _messages(sessions, "shop")
    assert (sent.provider, sent.provider_message_id) == ("sendgrid", "sg-1")
    [outboxed] = await _messages(sessions, "plain")
    assert outboxed.provider == "outbox"


async def test_new_keys_apply_to_the_next_send_and_deleted_ones_fall_back(
    sessions: SessionFactory, httpserver: HTTPServer
) -> None:
    settings = _settings(httpserver)
    await _seed(sessions, "shop")
    await _set_sendgrid(sessions, settings, "shop", "SG.old-key", NOON)
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data("", status=202)
    router = RetailerChannelRouter(sessions, settings, {"email": OutboxAdapter()})
    messaging = MessagingActivities(sessions, router, Settings())
    env = ActivityEnvironment()

    await env.run(messaging.send_step, _input("shop", EMAIL, "a"))
    await _set_sendgrid(sessions, settings, "shop", "SG.new-key", NOON + timedelta(minutes=1))
    await env.run(messaging.send_step, _input("shop", EMAIL, "b"))
    async with session_scope(sessions) as session:
        row = await session.get(ProviderSettings, "shop")
        await session.delete(row)
    await env.run(messaging.send_step, _input("shop", EMAIL, "c"))

    keys = [r.headers["Authorization"] for r, _ in httpserver.log]
    assert keys == ["Bearer SG.old-key", "Bearer SG.new-key"]
    providers = sorted(m.provider or "" for m in await _messages(sessions, "shop"))
    assert providers == ["outbox", "sendgrid", "sendgrid"]


async def test_twilio_with_an_api_key_and_a_messaging_service(
    sessions: SessionFactory, httpserver: HTTPServer, twilio_contract
) -> None:
    settings = _settings(httpserver)
    await _seed(sessions, "shop")
    async with session_scope(sessions) as session:
        session.add(
            ProviderSettings(
                retailer_id="shop",
                twilio_account_sid=ACCOUNT_SID,
                twilio_api_key_sid=KEY_SID,
                twilio_api_key_secret_enc=encrypt(settings, "key-secret"),
                twilio_messaging_service_sid=SERVICE_SID,
            )
        )
    httpserver.expect_request(
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", method="POST"
    ).respond_with_json({"sid": "SM" + "b" * 32, "status": "accepted"}, status=201)
    router = RetailerChannelRouter(sessions, settings, {"sms": OutboxAdapter()})

    result = await ActivityEnvironment().run(
        MessagingActivities(sessions, router, Settings()).send_step, _input("shop", SMS)
    )

    assert result.outcome == "sent"
    [(request, _)] = httpserver.log
    twilio_contract(request)
    expected = base64.b64encode(f"{KEY_SID}:key-secret".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.form["MessagingServiceSid"] == SERVICE_SID and "From" not in request.form
    assert request.form["To"] == "+14155552671"


async def test_a_plain_dict_is_a_fixed_router() -> None:
    outbox = OutboxAdapter()
    router = as_router({"email": outbox})

    assert isinstance(router, FixedRouter)
    assert await router.adapter_for("any", "email") is outbox
    assert as_router(router) is router
    with pytest.raises(KeyError):
        await router.adapter_for("any", "sms")
