"""SMS and voice through Twilio's 2010-04-01 REST API, with the official ``twilio`` SDK.

Both adapters share one client setup and one error mapping, so they live together. Calls go
through the SDK's synchronous client in a worker thread: its ``AsyncTwilioHttpClient`` ignores
the client-level timeout and needs an aiohttp session bound to the running loop, while the
``requests``-based client honours ``timeout`` on every call.

``base_url`` (tests, a fake Twilio) replaces the host of the ``api`` domain, the one that serves
``/2010-04-01/Accounts/{Sid}/Messages.json`` and ``Calls.json``.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from requests import RequestException, Timeout
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from winback.messaging.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)


class _TwilioAdapter:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        *,
        api_key_sid: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> None:
        # With an API key (SK…), ``auth_token`` is its secret and the account SID names the
        # account; otherwise the account SID and auth token are the credentials.
        self._client = Client(
            username=api_key_sid or account_sid,
            password=auth_token,
            account_sid=account_sid,
            http_client=TwilioHttpClient(timeout=timeout),
        )
        self._messaging_service_sid = messaging_service_sid
        if base_url:
            # Every resource URL is built as f"{domain.base_url}/{uri}" (twilio.base.domain).
            self._client.api.base_url = base_url.rstrip("/")
        self._from_number = from_number

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_number={self._from_number!r})"

    async def _call(self, create: Callable[[], Any]) -> SendReceipt:
        resource = await asyncio.to_thread(_map_errors, create)
        return SendReceipt(provider=self.name, provider_message_id=resource.sid)

    async def _find(self, listing: Callable[[], list[Any]], match: Callable[[Any], bool]) -> Any:
        found = await asyncio.to_thread(_map_errors, listing)
        return next((r for r in found if match(r)), None)


# Our clock and Twilio's may differ a little; a claim is matched to what Twilio created from
# this long before it.
CLOCK_SKEW = timedelta(minutes=2)


def _created_since(resource: Any, since: datetime) -> bool:
    created = getattr(resource, "date_created", None)
    return created is None or created >= since - CLOCK_SKEW


def _callback(message: OutgoingMessage) -> dict[str, str]:
    """Twilio reports delivery (and, for calls, answering machines) to our webhook."""
    return {"status_callback": message.status_callback_url} if message.status_callback_url else {}


class TwilioSmsAdapter(_TwilioAdapter):
    async def send(self, message: OutgoingMessage) -> SendReceipt:
        sender: dict[str, str] = (
            {"messaging_service_sid": self._messaging_service_sid}
            if self._messaging_service_sid
            else {"from_": self._from_number or ""}
        )
        return await self._call(
            lambda: self._client.messages.create(
                to=message.to, body=message.body, **sender, **_callback(message)
            )
        )

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        """Twilio's Messages to the number, filtered by ``To`` and ``DateSent>=`` the claim's
        day (the filter is a date), then by creation time and the same body."""
        day = (since - CLOCK_SKEW).replace(hour=0, minute=0, second=0, microsecond=0)
        found = await self._find(
            lambda: self._client.messages.list(to=message.to, date_sent_after=day, limit=100),
            lambda m: m.body == message.body and _created_since(m, since),
        )
        return SendReceipt(provider=self.name, provider_message_id=found.sid) if found else None


def voice_gather_url(public_base_url: str, retailer_id: str, message_id: int) -> str:
    """Where Twilio posts the key the shopper pressed during one of our calls."""
    base = public_base_url.rstrip("/")
    return f"{base}/v1/webhooks/twilio/{retailer_id}/voice-gather?message_id={message_id}"


def voice_twiml(message: OutgoingMessage) -> str:
    """Says the message; with a ``gather_url``, then offers "press 1" to reach the store (one
    digit, posted to ``gather_url``). No key pressed: the call ends after the prompt."""
    response = VoiceResponse()
    response.say(message.body)
    if message.gather_url:
        store = message.store_name or "the store"
        gather = response.gather(num_digits=1, action=message.gather_url, method="POST")
        gather.say(f"Press 1 to talk to someone from {store}.")
    return str(response)


class TwilioVoiceAdapter(_TwilioAdapter):
    async def send(self, message: OutgoingMessage) -> SendReceipt:
        twiml = message.twiml or voice_twiml(message)
        extra: dict[str, str] = _callback(message)
        if extra:
            extra["machine_detection"] = "Enable"  # a voicemail is recorded as such
        return await self._call(
            lambda: self._client.calls.create(
                to=message.to, from_=self._from_number, twiml=twiml, **extra
            )
        )

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        """Twilio's Calls to the number from our number, created since the claim (a queued
        call has no start time yet, so the list is not filtered by it)."""
        found = await self._find(
            lambda: self._client.calls.list(to=message.to, from_=self._from_number, limit=50),
            lambda c: _created_since(c, since),
        )
        return SendReceipt(provider=self.name, provider_message_id=found.sid) if found else None


def _map_errors(create: Callable[[], Any]) -> Any:
    try:
        return create()
    except (TwilioRestException, TwilioServiceException) as err:
        status = int(err.status)
        code = str(err.code) if err.code else str(status)
        text = (
            getattr(err, "msg", None) or getattr(err, "detail", None) or getattr(err, "title", "")
        )
        detail = f"Twilio answered {status} (code {code}): {text}"
        if status == 429 or status >= 500:
            raise TransientSendError(detail) from err
        raise PermanentSendError(detail, code=code) from err
    except (RequestException, OSError) as err:  # connection refused/reset, timeouts
        # A timeout may come after Twilio took the request: the retry looks before resending.
        maybe = isinstance(err, Timeout | TimeoutError)
        raise TransientSendError(f"Twilio unreachable: {err}", maybe_sent=maybe) from err
