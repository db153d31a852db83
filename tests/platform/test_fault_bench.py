"""The fault benchmark's parts that need no cluster: its defaults, and its provider fakes,
which the official SDKs (through our adapters) must be able to send to and list from."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from pytest_httpserver import HTTPServer
from sendgrid.helpers.eventwebhook import EventWebhook

from bench.fault_benchmark import TWILIO_SID, FakeProviders, parse_args
from winback.messaging.channels.base import OutgoingMessage
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter
from winback.messaging.channels.twilio_channels import TwilioSmsAdapter

PORT = 8138
KEY = ec.generate_private_key(ec.SECP256R1())


def test_the_defaults_are_200_carts_on_the_outbox_with_seven_worker_kills() -> None:
    config, json_path = parse_args([])
    assert (config.carts, config.providers, config.worker_kills) == (200, "outbox", 7)
    assert json_path is None
    config, _ = parse_args(["--carts", "20", "--providers", "fakes", "--workers", "2"])
    assert (config.carts, config.providers, config.workers) == (20, "fakes", 2)


async def test_the_fakes_log_what_the_sdks_send_and_list_it_back() -> None:
    base = f"http://127.0.0.1:{PORT}"
    email = SendGridEmailAdapter(api_key="SG.x", from_email="w@example.com", base_url=base)
    sms = TwilioSmsAdapter(
        account_sid=TWILIO_SID, auth_token="t", from_number="+15005550006", base_url=base
    )
    since = datetime.now(UTC) - timedelta(seconds=1)
    with FakeProviders(PORT, KEY) as fakes:
        await email.send(
            OutgoingMessage(7, "r", "email", "a@example.com", "Hi", subject="Your cart")
        )
        text = OutgoingMessage(8, "r", "sms", "+14155550100", "Your cart is waiting")
        sent = await sms.send(text)
        found = await sms.find_sent(text, since)
        missing = await sms.find_sent(OutgoingMessage(9, "r", "sms", "+14155550199", "x"), since)

    assert [(d.channel, d.to, d.message_id) for d in fakes.deliveries] == [
        ("email", "a@example.com", "7"),
        ("sms", "+14155550100", None),
    ]
    assert found == sent and missing is None


async def test_the_fake_sendgrid_posts_a_signed_processed_event_with_our_message_id(
    httpserver: HTTPServer,
) -> None:
    """As SendGrid's event webhook does: how a crashed email send is settled without a resend."""
    httpserver.expect_request("/events", method="POST").respond_with_data("{}")
    email = SendGridEmailAdapter(
        api_key="SG.x", from_email="w@example.com", base_url=f"http://127.0.0.1:{PORT}"
    )
    with FakeProviders(PORT, KEY) as fakes:
        fakes.event_urls = [httpserver.url_for("/events")]
        await email.send(OutgoingMessage(7, "r", "email", "a@example.com", "Hi", subject="S"))
        for _ in range(50):
            if httpserver.log:
                break
            await asyncio.sleep(0.1)

    [(request, _)] = httpserver.log
    body = request.get_data(as_text=True)
    [event] = json.loads(body)
    assert (event["event"], event["winback_message_id"], event["email"]) == (
        "processed",
        "7",
        "a@example.com",
    )
    assert EventWebhook().verify_signature(
        body,
        request.headers["X-Twilio-Email-Event-Webhook-Signature"],
        request.headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        KEY.public_key(),
    )
