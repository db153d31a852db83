"""Webhooks in: payloads signed the way SendGrid and Twilio sign them; forged, replayed and
malformed ones refused with 403 and no effect."""

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import select
from twilio.request_validator import RequestValidator

from tests.conftest import RetailerClient, Stack
from tests.support.api import eventually, signals
from tests.support.helpers import SHOPPER, items
from winback.carts.models import Cart, CartEvent
from winback.customers.models import Customer
from winback.messaging.models import Message, Suppression
from winback.messaging.provider_event_models import ProviderEvent
from workflows.carts.cart_recovery import CartRecoveryWorkflow

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]

TWILIO_TOKEN = "twilio-test-auth-token"
PUBLIC_BASE = "http://localhost:8000"  # the default public_base_url Twilio would call
PHONE = "+14155552671"  # SHOPPER's phone in E.164
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_KEY_OTHER = ec.generate_private_key(ec.SECP256R1())


def _public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(autouse=True)
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Set before the stack reads its settings."""
    monkeypatch.setenv("WINBACK_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("WINBACK_SENDGRID_WEBHOOK_PUBLIC_KEY", _public_key_b64(SENDGRID_KEY))
    yield


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    return await stack.retailer()


# --- signing like the providers ------------------------------------------------------------


def sendgrid_headers(
    body: bytes, *, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY, at: int | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    der = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(der).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


async def post_sendgrid(
    stack: Stack, retailer_id: str, events: list[dict[str, Any]], **sign: Any
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await stack.api.post(
        f"/v1/webhooks/sendgrid/{retailer_id}", content=body, headers=sendgrid_headers(body, **sign)
    )


async def post_twilio(
    stack: Stack,
    path: str,
    form: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    signed_path: str | None = None,
) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(PUBLIC_BASE + (signed_path or path), form)
    return await stack.api.post(path, data=form, headers={"X-Twilio-Signature": signature})


def sms(body: str, sid: str | None = None) -> dict[str, str]:
    return {
        "SmsSid": sid or f"SM{uuid.uuid4().hex}",
        "From": PHONE,
        "To": "+15005550006",
        "Body": body,
    }


# --- reading the database ------------------------------------------------------------------


async def customer(stack: Stack, retailer_id: str) -> Customer:
    async with stack.sessions() as session:
        query = select(Customer).where(Customer.retailer_id == retailer_id)
        return (await session.exec(query)).one()


async def suppressions(stack: Stack, retailer_id: str) -> set[tuple[str, str, str]]:
    async with stack.sessions() as session:
        rows = await session.exec(select(Suppression).where(Suppression.retailer_id == retailer_id))
        return {(s.channel, s.address, s.reason) for s in rows}


async def provider_events(stack: Stack) -> list[ProviderEvent]:
    async with stack.sessions() as session:
        return list(await session.exec(select(ProviderEvent)))


async def add_message(
    stack: Stack, retailer_id: str, cart_id: str, channel: str, sid: str | None = None
) -> int:
    """A message as the send activity leaves it: claimed, then accepted by the provider."""
    shopper = await customer(stack, retailer_id)
    async with stack.sessions() as session:
        message = Message(
            retailer_id=retailer_id,
            customer_id=shopper.id,
            dedupe_key=f"test/{uuid.uuid4().hex}",
            channel=channel,
            cart_id=cart_id,
            step_index=0,
            to_address=shopper.address_for(channel),
            status="sent",
            provider="sendgrid" if channel == "email" else "twilio",
            provider_message_id=sid,
        )
        session.add(message)
        await session.commit()
        assert message.id is not None
        return message.id


async def message_status(stack: Stack, message_id: int) -> str:
    async with stack.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        return message.status


async def start_cart(retailer: RetailerClient, cart_id: str, consent: dict[str, bool]) -> None:
    accepted = await retailer.event(
        cart_id, "item_added", items=items(80), customer=SHOPPER, consent=consent
    )
    assert accepted["workflow_actions"] == ["queued"], accepted  # the relay starts it


# --- SendGrid ------------------------------------------------------------------------------


async def test_sendgrid_events_move_the_message_forward_and_are_stored_once(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"email": True})
    message_id = await add_message(stack, retailer.id, "c1", "email")
    events = [
        {"event": kind, "sg_event_id": f"ev-{kind}", "email": SHOPPER["email"],
         "timestamp": int(time.time()), "winback_message_id": str(message_id)}
        for kind in ("delivered", "click", "open")  # out of order: open after click
    ]  # fmt: skip

    response = await post_sendgrid(stack, retailer.id, events)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 3, "duplicates": 0}
    assert await message_status(stack, message_id) == "clicked"

    again = await post_sendgrid(stack, retailer.id, events)  # SendGrid redelivers the batch
    assert again.json() == {"stored": 0, "duplicates": 3}
    assert len(await provider_events(stack)) == 3


async def test_sendgrid_unsubscribe_suppresses_and_stops_an_email_only_journey(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"email": True})
    message_id = await add_message(stack, retailer.id, "c1", "email")
    event = {"event": "unsubscribe", "sg_event_id": "ev-unsub", "email": SHOPPER["email"],
             "winback_message_id": str(message_id)}  # fmt: skip

    response = await post_sendgrid(stack, retailer.id, [event])

    assert response.status_code == 200, response.text
    assert ("email", SHOPPER["email"], "unsubscribe") in await suppressions(stack, retailer.id)
    assert not (await customer(stack, retailer.id)).consent_email
    assert (await retailer.result("c1")).stage == "opted_out"


async def test_a_hard_bounce_stops_email_only(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"email": True, "sms": True})
    message_id = await add_message(stack, retailer.id, "c1", "email")
    event = {"event": "bounce", "type": "bounce", "sg_event_id": "ev-bounce",
             "email": SHOPPER["email"], "winback_message_id": str(message_id)}  # fmt: skip

    response = await post_sendgrid(stack, retailer.id, [event])

    assert response.status_code == 200, response.text
    assert await message_status(stack, message_id) == "bounced"
    assert await suppressions(stack, retailer.id) == {("email", SHOPPER["email"], "bounce")}
    shopper = await customer(stack, retailer.id)
    assert shopper.consent_sms  # texts still reach the shopper: the journey goes on
    assert "opted_out" not in await signals(retailer, "c1")


async def test_an_event_for_another_retailers_message_changes_nothing(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"email": True})
    message_id = await add_message(stack, retailer.id, "c1", "email")
    other = await stack.retailer("Other")
    event = {"event": "click", "sg_event_id": "ev-x", "winback_message_id": str(message_id)}

    response = await post_sendgrid(stack, other.id, [event])

    assert response.status_code == 200, response.text
    assert await message_status(stack, message_id) == "sent"


@pytest.mark.parametrize(
    "tamper",
    ["forged key", "old timestamp", "future timestamp", "body changed", "missing signature",
     "missing timestamp", "garbage signature"],
)  # fmt: skip
async def test_sendgrid_refuses_what_it_did_not_sign(
    stack: Stack, retailer: RetailerClient, tamper: str
) -> None:
    await start_cart(retailer, "c1", {"email": True})
    events = [{"event": "unsubscribe", "sg_event_id": "ev-1", "email": SHOPPER["email"]}]
    body = json.dumps(events).encode()
    headers = sendgrid_headers(body)
    if tamper == "forged key":
        headers = sendgrid_headers(body, key=ec.generate_private_key(ec.SECP256R1()))
    elif tamper == "old timestamp":  # a captured request, replayed later
        headers = sendgrid_headers(body, at=int(time.time()) - 6 * 60)
    elif tamper == "future timestamp":
        headers = sendgrid_headers(body, at=int(time.time()) + 6 * 60)
    elif tamper == "body changed":
        body = body.replace(b"ev-1", b"ev-2")
    elif tamper == "missing signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif tamper == "missing timestamp":
        del headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    elif tamper == "garbage signature":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64 at all!!"

    response = await stack.api.post(
        f"/v1/webhooks/sendgrid/{retailer.id}", content=body, headers=headers
    )

    assert response.status_code == 403, response.text
    assert await provider_events(stack) == []
    assert await suppressions(stack, retailer.id) == set()
    assert (await customer(stack, retailer.id)).consent_email


async def test_a_signed_but_malformed_sendgrid_body_is_a_400(
    stack: Stack, retailer: RetailerClient
) -> None:
    body = b'{"event": "open"}'  # an object, not the array SendGrid sends
    response = await stack.api.post(
        f"/v1/webhooks/sendgrid/{retailer.id}", content=body, headers=sendgrid_headers(body)
    )
    assert response.status_code == 400, response.text


# --- Twilio --------------------------------------------------------------------------------


async def test_stop_opts_out_of_texts_and_calls_and_stops_the_journey(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"sms": True, "voice": True})

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("Stop")
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Message>" not in response.text  # Twilio itself confirms a STOP
    shopper = await customer(stack, retailer.id)
    assert not shopper.consent_sms and not shopper.consent_voice
    assert {(c, a) for c, a, _ in await suppressions(stack, retailer.id)} == {
        ("sms", PHONE),
        ("voice", PHONE),
    }
    assert (await retailer.result("c1")).stage == "opted_out"


@pytest.mark.parametrize("keyword", ["REVOKE", "optout"])
async def test_twilios_other_default_opt_out_words_opt_out_too(
    stack: Stack, retailer: RetailerClient, keyword: str
) -> None:
    await start_cart(retailer, "c1", {"email": True, "sms": True, "voice": True})

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms(keyword)
    )

    assert response.status_code == 200, response.text
    shopper = await customer(stack, retailer.id)
    assert not shopper.consent_sms and not shopper.consent_voice
    assert {(c, a) for c, a, _ in await suppressions(stack, retailer.id)} == {
        ("sms", PHONE),
        ("voice", PHONE),
    }


async def test_stop_with_email_still_allowed_keeps_the_journey_going(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"email": True, "sms": True})

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("STOPALL")
    )

    assert response.status_code == 200, response.text
    assert not (await customer(stack, retailer.id)).consent_sms
    assert "opted_out" not in await signals(retailer, "c1")


async def test_start_opts_back_in_to_texts(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"email": True, "sms": True})
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-inbound"
    assert (await post_twilio(stack, path, sms("STOP"))).status_code == 200

    response = await post_twilio(stack, path, sms("start"))

    assert response.status_code == 200, response.text
    shopper = await customer(stack, retailer.id)
    assert shopper.consent_sms
    assert not shopper.consent_voice  # a text is no consent to calls
    assert {c for c, _, _ in await suppressions(stack, retailer.id)} == {"voice"}


async def test_help_answers_with_the_help_text(stack: Stack, retailer: RetailerClient) -> None:
    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("help")
    )
    assert response.status_code == 200, response.text
    assert "<Message>Acme: cart reminders. Reply STOP to opt out" in response.text


async def test_any_other_reply_is_kept_on_the_cart(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"sms": True})
    sid = "SMreply1"

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("Is the blue one back?", sid)
    )

    assert response.status_code == 200, response.text
    assert "<Message>" not in response.text
    async with stack.sessions() as session:
        notes = list(await session.exec(select(CartEvent).where(CartEvent.type == "sms_reply")))
    assert [(n.cart_id, n.payload["body"]) for n in notes] == [("c1", "Is the blue one back?")]
    assert (await customer(stack, retailer.id)).consent_sms


async def test_a_redelivered_inbound_text_is_stored_once(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"sms": True})
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-inbound"
    for _ in range(2):
        response = await post_twilio(stack, path, sms("Hello?", "SMsame"))
        assert response.status_code == 200, response.text
    assert len(await provider_events(stack)) == 1
    async with stack.sessions() as session:
        notes = list(await session.exec(select(CartEvent).where(CartEvent.type == "sms_reply")))
    assert len(notes) == 1


async def test_events_are_deduplicated_per_retailer(stack: Stack, retailer: RetailerClient) -> None:
    """The same event id at two retailers is two events: one must not hide the other."""
    other = await stack.retailer("Other")
    await start_cart(retailer, "c1", {"email": True, "sms": True})
    await start_cart(other, "c1", {"email": True, "sms": True})

    for shop in (retailer, other):
        response = await post_twilio(
            stack, f"/v1/webhooks/twilio/{shop.id}/sms-inbound", sms("STOP", "SMshared")
        )
        assert response.status_code == 200, response.text

    assert len(await provider_events(stack)) == 2
    for shop in (retailer, other):
        assert {(c, a) for c, a, _ in await suppressions(stack, shop.id)} == {
            ("sms", PHONE),
            ("voice", PHONE),
        }


@pytest.mark.parametrize(
    "tamper", ["wrong token", "missing", "other retailer's url", "form changed"]
)
async def test_twilio_refuses_what_it_did_not_sign(
    stack: Stack, retailer: RetailerClient, tamper: str
) -> None:
    await start_cart(retailer, "c1", {"sms": True})
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-inbound"
    form = sms("STOP")
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE + path, form)
    if tamper == "wrong token":
        signature = RequestValidator("guessed").compute_signature(PUBLIC_BASE + path, form)
    elif tamper == "other retailer's url":
        other = "/v1/webhooks/twilio/someone_else/sms-inbound"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE + other, form)
    elif tamper == "form changed":
        form = {**form, "From": "+14155550000"}
    headers = {} if tamper == "missing" else {"X-Twilio-Signature": signature}

    response = await stack.api.post(path, data=form, headers=headers)

    assert response.status_code == 403, response.text
    assert await provider_events(stack) == []
    assert await suppressions(stack, retailer.id) == set()
    assert (await customer(stack, retailer.id)).consent_sms


async def test_sms_status_callbacks_update_the_message_once(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"sms": True})
    message_id = await add_message(stack, retailer.id, "c1", "sms", sid="SMout1")
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-status"
    delivered = {"MessageSid": "SMout1", "MessageStatus": "delivered", "To": PHONE}

    first = await post_twilio(stack, path, delivered)
    late = await post_twilio(stack, path, {**delivered, "MessageStatus": "sent"})
    again = await post_twilio(stack, path, delivered)

    assert first.json() == {"stored": 1, "duplicates": 0}
    assert late.json() == {"stored": 1, "duplicates": 0}
    assert again.json() == {"stored": 0, "duplicates": 1}
    assert await message_status(stack, message_id) == "delivered"  # not undone by a late "sent"


async def test_voice_status_records_a_voicemail(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"voice": True})
    message_id = await add_message(stack, retailer.id, "c1", "voice", sid="CAcall1")
    form = {"CallSid": "CAcall1", "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}

    response = await post_twilio(stack, f"/v1/webhooks/twilio/{retailer.id}/voice-status", form)

    assert response.status_code == 200, response.text
    async with stack.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.reply == "voicemail"


# --- per-retailer credentials ----------------------------------------------------------------

RETAILER_SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
RETAILER_TWILIO_TOKEN = "retailer-own-twilio-auth-token"
RETAILER_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def _public_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def own_keys(retailer: RetailerClient, **extra: Any) -> dict[str, Any]:
    body = {
        "sendgrid_webhook_public_key": _public_key_pem(RETAILER_SENDGRID_KEY),
        "twilio_account_sid": RETAILER_ACCOUNT_SID,
        "twilio_auth_token": RETAILER_TWILIO_TOKEN,
        "twilio_from_number": "+15005550006",
        **extra,
    }
    response = await retailer.put("/v1/providers", body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _delivered(message: str) -> list[dict[str, Any]]:
    return [{"event": "delivered", "sg_event_id": f"ev-{message}", "email": SHOPPER["email"]}]


async def test_a_retailer_with_its_own_keys_is_verified_with_them_only(
    stack: Stack, retailer: RetailerClient
) -> None:
    shown = await own_keys(retailer)
    assert shown["webhooks"] == {"sendgrid": "retailer", "twilio": "retailer"}
    other = await stack.retailer("Other")
    await own_keys(other, sendgrid_webhook_public_key=_public_key_b64(SENDGRID_KEY_OTHER))
    status_path = f"/v1/webhooks/twilio/{retailer.id}/sms-status"
    status_form = {"MessageSid": "SMown1", "MessageStatus": "delivered"}

    own = await post_sendgrid(stack, retailer.id, _delivered("own"), key=RETAILER_SENDGRID_KEY)
    process_wide = await post_sendgrid(stack, retailer.id, _delivered("pw"), key=SENDGRID_KEY)
    others = await post_sendgrid(stack, retailer.id, _delivered("o"), key=SENDGRID_KEY_OTHER)
    twilio_own = await post_twilio(stack, status_path, status_form, token=RETAILER_TWILIO_TOKEN)
    twilio_pw = await post_twilio(stack, status_path, {**status_form, "MessageSid": "SMpw"})

    assert own.status_code == 200, own.text
    assert twilio_own.status_code == 200, twilio_own.text
    for refused in (process_wide, others, twilio_pw):
        assert refused.status_code == 403, refused.text
    assert {e.event_id for e in await provider_events(stack)} == {"ev-own", "SMown1:delivered"}


async def test_a_retailer_without_its_own_keys_uses_the_process_wide_ones(
    stack: Stack, retailer: RetailerClient
) -> None:
    other = await stack.retailer("Other")
    await own_keys(other)  # someone else's keys change nothing for this retailer
    status_path = f"/v1/webhooks/twilio/{retailer.id}/sms-status"
    status_form = {"MessageSid": "SMdef1", "MessageStatus": "delivered"}

    accepted = await post_sendgrid(stack, retailer.id, _delivered("pw"))
    theirs = RETAILER_SENDGRID_KEY
    with_others = await post_sendgrid(stack, retailer.id, _delivered("x"), key=theirs)
    twilio_ok = await post_twilio(stack, status_path, status_form)
    twilio_others = await post_twilio(
        stack, status_path, {**status_form, "MessageSid": "SMx"}, token=RETAILER_TWILIO_TOKEN
    )

    assert accepted.status_code == 200, accepted.text
    assert twilio_ok.status_code == 200, twilio_ok.text
    assert with_others.status_code == 403 and twilio_others.status_code == 403


async def test_an_api_key_is_not_what_twilio_signs_with(
    stack: Stack, retailer: RetailerClient
) -> None:
    shown = await own_keys(
        retailer,
        twilio_auth_token=None,
        twilio_api_key_sid="SK" + "00112233445566778899aabbccddeeff",
        twilio_api_key_secret="api-key-secret",
    )
    assert shown["webhooks"]["twilio"] == "missing"
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-status"
    form = {"MessageSid": "SMk1", "MessageStatus": "delivered"}

    for token in ("api-key-secret", TWILIO_TOKEN):
        response = await post_twilio(stack, path, form, token=token)
        assert response.status_code == 403, response.text
        assert "auth token" in response.text
    assert await provider_events(stack) == []


# --- "press 1 to talk to someone" ------------------------------------------------------------


async def open_tasks(retailer: RetailerClient, cart_id: str) -> list[Any]:
    tasks = await retailer.workflow(cart_id).query(CartRecoveryWorkflow.tasks)
    return [t for t in tasks if t.status in ("open", "claimed")]


async def post_gather(
    stack: Stack, retailer_id: str, message_id: int, digits: str, **sign: Any
) -> httpx.Response:
    path = f"/v1/webhooks/twilio/{retailer_id}/voice-gather?message_id={message_id}"
    return await post_twilio(stack, path, {"CallSid": "CAgather1", "Digits": digits}, **sign)


async def test_pressing_1_opens_a_callback_task(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"voice": True})
    message_id = await add_message(stack, retailer.id, "c1", "voice", sid="CAgather1")

    response = await post_gather(stack, retailer.id, message_id, "1")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Say>Thank you, someone will call you back shortly.</Say>" in response.text
    [task] = await eventually(lambda: open_tasks(retailer, "c1"), what="a callback task")
    assert task.kind == "callback"

    again = await post_gather(stack, retailer.id, message_id, "1")  # Twilio retries the post
    assert again.status_code == 200 and "call you back" in again.text
    assert [e.type for e in await provider_events(stack)] == ["call_gather"]
    assert (await signals(retailer, "c1")).count("callback_requested") == 1


async def test_another_key_says_goodbye_and_opens_nothing(
    stack: Stack, retailer: RetailerClient
) -> None:
    await start_cart(retailer, "c1", {"voice": True})
    message_id = await add_message(stack, retailer.id, "c1", "voice", sid="CAgather1")

    response = await post_gather(stack, retailer.id, message_id, "2")

    assert response.status_code == 200, response.text
    assert "Goodbye" in response.text and "call you back" not in response.text
    assert "callback_requested" not in await signals(retailer, "c1")
    assert await open_tasks(retailer, "c1") == []
    async with stack.sessions() as session:
        cart = (await session.exec(select(Cart).where(Cart.retailer_id == retailer.id))).one()
    assert not cart.callback_requested


async def test_a_forged_key_press_is_refused(stack: Stack, retailer: RetailerClient) -> None:
    await start_cart(retailer, "c1", {"voice": True})
    message_id = await add_message(stack, retailer.id, "c1", "voice", sid="CAgather1")

    response = await post_gather(stack, retailer.id, message_id, "1", token="guessed")

    assert response.status_code == 403, response.text
    assert await provider_events(stack) == []
    assert "callback_requested" not in await signals(retailer, "c1")


async def test_help_answers_with_the_retailers_own_help_text(
    stack: Stack, retailer: RetailerClient
) -> None:
    saved = await retailer.put("/v1/providers", {"sms_help_text": "Acme help: call 900 123 456."})
    assert saved.status_code == 200, saved.text

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("HELP")
    )

    assert "<Message>Acme help: call 900 123 456.</Message>" in response.text


async def test_a_reply_asks_an_agent_to_call_back_when_the_retailer_wants_it(
    stack: Stack, retailer: RetailerClient
) -> None:
    saved = await retailer.put("/v1/providers", {"sms_reply_opens_task": True})
    assert saved.status_code == 200 and saved.json()["sms_reply_opens_task"] is True
    await start_cart(retailer, "c1", {"sms": True})

    response = await post_twilio(
        stack, f"/v1/webhooks/twilio/{retailer.id}/sms-inbound", sms("Can you call me?", "SMr2")
    )

    assert response.status_code == 200, response.text
    [task] = await eventually(lambda: open_tasks(retailer, "c1"), what="a callback task")
    assert task.kind == "callback"
