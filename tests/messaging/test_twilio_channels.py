"""Twilio SMS and voice adapters with the real SDK against a local stand-in for
api.twilio.com."""

import asyncio
import base64
import logging
import xml.etree.ElementTree as ET

import pytest
from openapi_core.exceptions import OpenAPIError
from pytest_httpserver import HTTPServer
from twilio.rest import Client

from winback.messaging.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)
from winback.messaging.channels.twilio_channels import TwilioSmsAdapter, TwilioVoiceAdapter

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token"
FROM = "+15005550006"
TO = "+14155550100"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def _adapters(httpserver: HTTPServer) -> tuple[TwilioSmsAdapter, TwilioVoiceAdapter]:
    kwargs = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM,
        "base_url": httpserver.url_for(""),
    }
    return TwilioSmsAdapter(**kwargs), TwilioVoiceAdapter(**kwargs)


def _message(
    channel: str = "sms", body: str = "Your cart is waiting: https://s.example/c/1"
) -> OutgoingMessage:
    return OutgoingMessage(message_id=7, retailer_id="acme", channel=channel, to=TO, body=body)


def _basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


async def test_sms_posts_to_from_body_and_returns_the_message_sid(
    httpserver: HTTPServer, twilio_contract
) -> None:
    httpserver.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM" + "a" * 32, "status": "queued"}, status=201
    )
    sms, _ = _adapters(httpserver)

    receipt = await sms.send(_message())

    assert receipt == SendReceipt(provider="twilio", provider_message_id="SM" + "a" * 32)
    [(request, _)] = httpserver.log
    twilio_contract(request)
    assert request.headers["Authorization"] == _basic_auth()
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {
        "To": TO,
        "From": FROM,
        "Body": "Your cart is waiting: https://s.example/c/1",
    }


async def test_voice_places_a_call_that_says_the_body(
    httpserver: HTTPServer, twilio_contract
) -> None:
    httpserver.expect_oneshot_request(CALLS, method="POST").respond_with_json(
        {"sid": "CA" + "b" * 32, "status": "queued"}, status=201
    )
    _, voice = _adapters(httpserver)

    body = "Hello from Acme. Your cart <3 items & more> is waiting."
    receipt = await voice.send(_message("voice", body))

    assert receipt == SendReceipt(provider="twilio", provider_message_id="CA" + "b" * 32)
    [(request, _)] = httpserver.log
    twilio_contract(request)
    assert request.headers["Authorization"] == _basic_auth()
    form = request.form.to_dict()
    assert set(form) == {"To", "From", "Twiml"}
    assert (form["To"], form["From"]) == (TO, FROM)
    twiml = ET.fromstring(form["Twiml"])
    assert twiml.tag == "Response"
    [say] = list(twiml)
    assert say.tag == "Say"
    assert say.text == body


def _twilio_error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "The 'To' number +1415555 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21614, "'To' number is not a valid mobile number"),
    ],
)
@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_refusals_are_permanent_with_the_twilio_code(
    httpserver: HTTPServer, channel: str, code: int, message: str
) -> None:
    path = MESSAGES if channel == "sms" else CALLS
    httpserver.expect_oneshot_request(path, method="POST").respond_with_json(
        _twilio_error(400, code, message), status=400
    )
    sms, voice = _adapters(httpserver)

    with pytest.raises(PermanentSendError) as excinfo:
        await (sms if channel == "sms" else voice).send(_message(channel))
    assert excinfo.value.code == str(code)


async def test_other_client_errors_are_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        _twilio_error(401, 20003, "Authenticate"), status=401
    )
    sms, _ = _adapters(httpserver)

    with pytest.raises(PermanentSendError) as excinfo:
        await sms.send(_message())
    assert excinfo.value.code == "20003"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, _twilio_error(429, 20429, "Too Many Requests")),
        (500, _twilio_error(500, 20500, "Internal Server Error")),
        (503, None),  # a proxy's non-JSON page
    ],
)
@pytest.mark.parametrize("channel", ["sms", "voice"])
async def test_throttling_and_server_errors_are_transient(
    httpserver: HTTPServer, channel: str, status: int, body: dict | None
) -> None:
    path = MESSAGES if channel == "sms" else CALLS
    handler = httpserver.expect_oneshot_request(path, method="POST")
    if body is None:
        handler.respond_with_data("<html>Service Unavailable</html>", status=status)
    else:
        handler.respond_with_json(body, status=status)
    sms, voice = _adapters(httpserver)

    with pytest.raises(TransientSendError, match=str(status)):
        await (sms if channel == "sms" else voice).send(_message(channel))


async def test_unreachable_host_is_transient() -> None:
    sms = TwilioSmsAdapter(ACCOUNT_SID, AUTH_TOKEN, FROM, base_url="http://127.0.0.1:1")
    with pytest.raises(TransientSendError):
        await sms.send(_message())


def test_repr_does_not_show_the_auth_token(httpserver: HTTPServer) -> None:
    for adapter in _adapters(httpserver):
        assert AUTH_TOKEN not in repr(adapter)


async def test_the_contract_check_rejects_what_the_spec_forbids(
    httpserver: HTTPServer, twilio_contract
) -> None:
    """Guards the guard: a message without ``To``."""
    httpserver.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM" + "a" * 32}, status=201
    )
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = httpserver.url_for("").rstrip("/")
    await asyncio.to_thread(client.messages.create, to=None, from_=FROM, body="Hi")

    [(request, _)] = httpserver.log
    with pytest.raises(OpenAPIError):
        twilio_contract(request)


async def test_the_auth_token_stays_out_of_debug_logs(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM" + "a" * 32}, status=201
    )
    caplog.set_level(logging.DEBUG)
    sms, _ = _adapters(httpserver)

    await sms.send(_message())

    assert caplog.text  # the SDK does log the request
    assert AUTH_TOKEN not in caplog.text
    assert _basic_auth().split()[1] not in caplog.text


async def test_texts_and_calls_ask_for_delivery_callbacks_and_calls_detect_machines(
    httpserver: HTTPServer, twilio_contract
) -> None:
    callback = "https://winback.example/v1/webhooks/twilio/acme/sms-status"
    httpserver.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM" + "c" * 32, "status": "queued"}, status=201
    )
    httpserver.expect_oneshot_request(CALLS, method="POST").respond_with_json(
        {"sid": "CA" + "d" * 32, "status": "queued"}, status=201
    )
    sms, voice = _adapters(httpserver)
    base = _message()

    await sms.send(OutgoingMessage(**{**base.__dict__, "status_callback_url": callback}))
    await voice.send(
        OutgoingMessage(**{**base.__dict__, "channel": "voice", "status_callback_url": callback})
    )

    [(text, _), (call, _)] = httpserver.log
    twilio_contract(text)
    twilio_contract(call)
    assert text.form["StatusCallback"] == callback
    assert (call.form["StatusCallback"], call.form["MachineDetection"]) == (callback, "Enable")


async def test_voice_with_a_gather_url_offers_press_1(
    httpserver: HTTPServer, twilio_contract
) -> None:
    from dataclasses import replace

    from winback.messaging.channels.twilio_channels import voice_gather_url

    httpserver.expect_oneshot_request(CALLS, method="POST").respond_with_json(
        {"sid": "CA" + "c" * 32, "status": "queued"}, status=201
    )
    _, voice = _adapters(httpserver)
    gather_url = voice_gather_url("https://winback.example/", "acme", 7)
    message = replace(_message("voice", "Your cart is waiting."), gather_url=gather_url)

    await voice.send(replace(message, store_name="Acme & Co"))

    [(request, _)] = httpserver.log
    twilio_contract(request)
    twiml = ET.fromstring(request.form["Twiml"])
    say, gather = list(twiml)
    assert (say.tag, say.text) == ("Say", "Your cart is waiting.")
    assert gather.tag == "Gather"
    assert gather.attrib == {
        "numDigits": "1",
        "method": "POST",
        "action": "https://winback.example/v1/webhooks/twilio/acme/voice-gather?message_id=7",
    }
    [prompt] = list(gather)
    assert (prompt.tag, prompt.text) == ("Say", "Press 1 to talk to someone from Acme & Co.")


# --- settling a send a crash interrupted ------------------------------------------------------


def _listed(sid: str, body: str, created: str) -> dict[str, object]:
    return {"sid": sid, "to": TO, "from": FROM, "body": body, "date_created": created}


async def test_find_sent_lists_messages_to_the_number_since_the_claim_day(
    httpserver: HTTPServer, twilio_contract
) -> None:
    from datetime import UTC, datetime

    sms, _ = _adapters(httpserver)
    ours = _message()
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(
        {
            "messages": [
                _listed("SM" + "c" * 32, "another text", "Tue, 01 Dec 2026 10:00:05 +0000"),
                _listed("SM" + "d" * 32, ours.body, "Tue, 01 Dec 2026 09:00:00 +0000"),
                _listed("SM" + "e" * 32, ours.body, "Tue, 01 Dec 2026 10:00:02 +0000"),
            ],
            "next_page_uri": None,
            "page": 0,
            "page_size": 100,
        }
    )

    found = await sms.find_sent(ours, since=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))

    assert found == SendReceipt(provider="twilio", provider_message_id="SM" + "e" * 32)
    [(request, _)] = httpserver.log
    twilio_contract(request)
    assert request.args["To"] == TO
    assert request.args["DateSent>"] == "2026-12-01T00:00:00Z"


async def test_find_sent_is_none_when_twilio_has_nothing_of_ours(httpserver: HTTPServer) -> None:
    from datetime import UTC, datetime

    sms, voice = _adapters(httpserver)
    empty = {"next_page_uri": None, "page": 0, "page_size": 50}
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json({**empty, "messages": []})
    httpserver.expect_request(CALLS, method="GET").respond_with_json({**empty, "calls": []})
    since = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    assert await sms.find_sent(_message(), since=since) is None
    assert await voice.find_sent(_message("voice"), since=since) is None
