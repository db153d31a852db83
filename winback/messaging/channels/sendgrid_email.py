"""Email through SendGrid's Mail Send v3 API, with the official ``sendgrid`` SDK.

The SDK is synchronous (urllib underneath), so each send runs in a worker thread. Our message id
and retailer travel as ``custom_args`` so SendGrid's event webhook can be mapped back to the row.
"""

import asyncio
import logging

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    Header,
    Mail,
    MailSettings,
    SandBoxMode,
    TemplateId,
)

from winback.messaging.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)

# python_http_client logs every request's headers, Authorization included, at DEBUG.
# Keep that logger above DEBUG so the API key can never reach the logs.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


class SendGridEmailAdapter:
    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        from_email: str,
        base_url: str = "https://api.sendgrid.com",
        timeout: float = 10.0,
        template_ids: dict[str, str] | None = None,
        sandbox: bool = False,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=base_url)
        self._from_email = from_email
        self._timeout = timeout
        self._template_ids = dict(template_ids or {})  # our template name -> SendGrid "d-..." id
        self._sandbox = sandbox

    def __repr__(self) -> str:
        return f"SendGridEmailAdapter(from_email={self._from_email!r}, host={self._client.host!r})"

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        mail = self._build(message)
        return await asyncio.to_thread(self._post, mail)

    def _build(self, message: OutgoingMessage) -> Mail:
        if not message.subject:
            raise PermanentSendError("an email needs a subject", code="missing_subject")
        dynamic = self._template_ids.get(message.template or "")
        if dynamic:
            # The retailer's own SendGrid dynamic template, fed the values we render with.
            mail = Mail(from_email=self._from_email, to_emails=message.to)
            mail.template_id = TemplateId(dynamic)
            mail.dynamic_template_data = message.template_data
        else:
            mail = Mail(
                from_email=self._from_email,
                to_emails=message.to,
                subject=message.subject,
                plain_text_content=message.body,
                html_content=message.html,
            )
        # On the (single) personalization: the published Mail Send schema types the top-level
        # ``custom_args`` as a string, the personalization's as an object. Events carry either.
        mail.custom_arg = [
            CustomArg("winback_message_id", str(message.message_id), p=0),
            CustomArg("winback_retailer", message.retailer_id, p=0),
        ]
        if self._sandbox:
            mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        if message.categories:
            mail.category = [Category(c) for c in message.categories]
        if message.unsubscribe_url:
            # RFC 8058 one-click unsubscribe.
            mail.header = [
                Header("List-Unsubscribe", f"<{message.unsubscribe_url}>"),
                Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
        return mail

    def _post(self, mail: Mail) -> SendReceipt:
        try:
            # What SendGridAPIClient.send does, plus a timeout.
            response = self._client.client.mail.send.post(
                request_body=mail.get(), timeout=self._timeout
            )
        except HTTPError as err:
            status = int(err.status_code)
            detail = f"SendGrid answered {status}: {_excerpt(err.body)}"
            if status == 429 or status >= 500:
                raise TransientSendError(detail) from err
            raise PermanentSendError(detail, code=str(status)) from err
        except OSError as err:  # URLError, connection refused/reset, socket timeout
            # A timeout may come after SendGrid took the request: keep the claim and settle it.
            maybe = isinstance(err, TimeoutError) or isinstance(
                getattr(err, "reason", None), TimeoutError
            )
            raise TransientSendError(f"SendGrid unreachable: {err}", maybe_sent=maybe) from err
        return SendReceipt(
            provider=self.name, provider_message_id=response.headers.get("X-Message-Id")
        )


def _excerpt(body: bytes | str | None, limit: int = 300) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text[:limit]
