"""SendGridEmailAdapter with the real SDK against a local stand-in for api.sendgrid.com."""

import asyncio
import logging

import pytest
from openapi_core.exceptions import OpenAPIError
from pytest_httpserver import HTTPServer
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from winback.messaging.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter

API_KEY = "SG.test-key"
MAIL_SEND = "/v3/mail/send"


def _adapter(httpserver: HTTPServer) -> SendGridEmailAdapter:
    return SendGridEmailAdapter(
        api_key=API_KEY,
        from_email="shop@example.com",
        base_url=httpserver.url_for("").rstrip("/"),
    )


def _message(**overrides: object) -> OutgoingMessage:
    fields: dict = {
        "message_id": 42,
        "retailer_id": "acme",
        "channel": "email",
        "to": "jane@example.org",
        "subject": "You left something behind",
        "body": "Your cart is waiting: https://shop.example.com/cart/abc",
        "html": "<p>Your cart is waiting</p>",
        "categories": ["winback", "step-1"],
        "unsubscribe_url": "https://winback.example.com/u/xyz",
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)


async def test_sends_the_mail_and_returns_sendgrids_message_id(
    httpserver: HTTPServer, sendgrid_contract
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data(
        "", status=202, headers={"X-Message-Id": "sg-msg-123"}
    )

    receipt = await _adapter(httpserver).send(_message())

    assert receipt == SendReceipt(provider="sendgrid", provider_message_id="sg-msg-123")
    [(request, _)] = httpserver.log
    sendgrid_contract(request)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.mimetype == "application/json"
    body = request.get_json()
    assert sorted(body.pop("categories")) == ["step-1", "winback"]  # the SDK prepends each one
    assert body == {
        "from": {"email": "shop@example.com"},
        "subject": "You left something behind",
        "personalizations": [
            {
                "to": [{"email": "jane@example.org"}],
                "custom_args": {"winback_message_id": "42", "winback_retailer": "acme"},
            }
        ],
        "content": [
            {
                "type": "text/plain",
                "value": "Your cart is waiting: https://shop.example.com/cart/abc",
            },
            {"type": "text/html", "value": "<p>Your cart is waiting</p>"},
        ],
        "headers": {
            "List-Unsubscribe": "<https://winback.example.com/u/xyz>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


async def test_plain_text_only_without_unsubscribe_or_categories(
    httpserver: HTTPServer, sendgrid_contract
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data(
        "", status=202, headers={"X-Message-Id": "sg-msg-2"}
    )

    await _adapter(httpserver).send(_message(html=None, categories=[], unsubscribe_url=None))

    [(request, _)] = httpserver.log
    sendgrid_contract(request)
    body = request.get_json()
    assert body["content"] == [{"type": "text/plain", "value": _message().body}]
    assert "headers" not in body
    assert "categories" not in body


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_transient(
    httpserver: HTTPServer, status: int
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_json(
        {"errors": [{"message": "try later"}]}, status=status
    )

    with pytest.raises(TransientSendError, match=str(status)):
        await _adapter(httpserver).send(_message())


@pytest.mark.parametrize("status", [400, 401, 403, 413])
async def test_other_client_errors_are_permanent_with_the_status_as_code(
    httpserver: HTTPServer, status: int
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_json(
        {"errors": [{"message": "The to email does not contain a valid address.", "field": "to"}]},
        status=status,
    )

    with pytest.raises(PermanentSendError) as excinfo:
        await _adapter(httpserver).send(_message())
    assert excinfo.value.code == str(status)


async def test_unreachable_host_is_transient() -> None:
    adapter = SendGridEmailAdapter(API_KEY, "shop@example.com", base_url="http://127.0.0.1:1")
    with pytest.raises(TransientSendError):
        await adapter.send(_message())


async def test_missing_subject_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    with pytest.raises(PermanentSendError) as excinfo:
        await _adapter(httpserver).send(_message(subject=None))
    assert excinfo.value.code == "missing_subject"
    assert httpserver.log == []


def test_repr_does_not_show_the_api_key(httpserver: HTTPServer) -> None:
    assert API_KEY not in repr(_adapter(httpserver))


async def test_the_contract_check_rejects_what_the_spec_forbids(
    httpserver: HTTPServer, sendgrid_contract
) -> None:
    """Guards the guard: a top-level ``custom_args`` object is typed a string in the document."""
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data("", status=202)
    client = SendGridAPIClient(api_key=API_KEY, host=httpserver.url_for("").rstrip("/"))
    mail = Mail("shop@example.com", "jane@example.org", "Hi", "Text")
    mail.custom_arg = CustomArg("winback_message_id", "1")
    await asyncio.to_thread(client.send, mail)

    [(request, _)] = httpserver.log
    with pytest.raises(OpenAPIError):
        sendgrid_contract(request)


async def test_the_api_key_stays_out_of_debug_logs(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data("", status=202)
    caplog.set_level(logging.DEBUG)

    await _adapter(httpserver).send(_message())

    assert API_KEY not in caplog.text


async def test_a_mapped_template_goes_as_the_retailers_dynamic_template(
    httpserver: HTTPServer, sendgrid_contract
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data("", status=202)
    adapter = SendGridEmailAdapter(
        api_key=API_KEY,
        from_email="shop@example.com",
        base_url=httpserver.url_for("").rstrip("/"),
        template_ids={"cart_reminder": "d-0123456789abcdef0123456789abcdef"},
    )
    data = {"first_name": "Jane", "total": "89.90", "cart_url": "https://shop.example.com/c/1"}

    await adapter.send(_message(template="cart_reminder", template_data=data))

    [(request, _)] = httpserver.log
    sendgrid_contract(request)
    body = request.get_json()
    assert body["template_id"] == "d-0123456789abcdef0123456789abcdef"
    assert body["personalizations"][0]["dynamic_template_data"] == data
    assert "content" not in body
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_sandbox_mode_asks_sendgrid_to_check_and_deliver_nothing(
    httpserver: HTTPServer, sendgrid_contract
) -> None:
    httpserver.expect_oneshot_request(MAIL_SEND, method="POST").respond_with_data("", status=200)
    adapter = SendGridEmailAdapter(
        api_key=API_KEY,
        from_email="shop@example.com",
        base_url=httpserver.url_for("").rstrip("/"),
        sandbox=True,
    )

    await adapter.send(_message())

    [(request, _)] = httpserver.log
    sendgrid_contract(request)
    assert request.get_json()["mail_settings"] == {"sandbox_mode": {"enable": True}}
