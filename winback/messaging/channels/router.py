"""Which adapter sends a retailer's message on a channel.

``RetailerChannelRouter`` uses the retailer's own SendGrid / Twilio settings when it has set
them, else the process-wide adapters (``adapters_from_settings``: the providers in the
environment, else the outbox). Adapters built from a retailer's settings are cached per retailer
and rebuilt when the row's ``updated_at`` changes, so a retailer's new keys apply to the next
send; the check is one primary-key read, and secrets are decrypted only on a rebuild.

``FixedRouter`` wraps a plain ``{"email": adapter, ...}`` dict (tests, benchmarks).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import Protocol

from winback.messaging.channels.base import ChannelAdapter
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter
from winback.messaging.channels.twilio_channels import TwilioSmsAdapter, TwilioVoiceAdapter
from winback.platform.crypto import decrypt
from winback.platform.db import SessionFactory
from winback.platform.settings import Settings
from winback.retailers.provider_settings import ProviderSettings, channel_providers


class ChannelRouter(Protocol):
    async def adapter_for(self, retailer_id: str, channel: str) -> ChannelAdapter:
        """The adapter that sends ``retailer_id``'s messages on ``channel``."""
        ...


class FixedRouter:
    """The same adapters for every retailer."""

    def __init__(self, adapters: Mapping[str, ChannelAdapter]) -> None:
        self.adapters = dict(adapters)

    async def adapter_for(self, retailer_id: str, channel: str) -> ChannelAdapter:
        return self.adapters[channel]


Adapters = ChannelRouter | Mapping[str, ChannelAdapter]
"""What the activities take: a router, or a plain ``{channel: adapter}`` dict."""


def as_router(adapters: Adapters) -> ChannelRouter:
    """A router as is; a ``{channel: adapter}`` dict as a ``FixedRouter``."""
    if isinstance(adapters, Mapping):
        return FixedRouter(adapters)
    return adapters


@dataclass
class _Built:
    updated_at: datetime
    adapters: dict[str, ChannelAdapter]


class RetailerChannelRouter:
    def __init__(
        self,
        sessions: SessionFactory,
        settings: Settings,
        defaults: Mapping[str, ChannelAdapter],
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._defaults = dict(defaults)
        self._cache: dict[str, _Built] = {}

    async def adapter_for(self, retailer_id: str, channel: str) -> ChannelAdapter:
        async with self._sessions() as session:
            row = await session.get(ProviderSettings, retailer_id)
        if row is None:
            self._cache.pop(retailer_id, None)
            return self._defaults[channel]
        built = self._cache.get(retailer_id)
        if built is None or built.updated_at != row.updated_at:
            built = _Built(row.updated_at, retailer_adapters(row, self._settings))
            self._cache[retailer_id] = built
        return built.adapters.get(channel) or self._defaults[channel]

    def invalidate(self, retailer_id: str | None = None) -> None:
        """Forgets built adapters (all, or one retailer's)."""
        if retailer_id is None:
            self._cache.clear()
        else:
            self._cache.pop(retailer_id, None)


def retailer_adapters(row: ProviderSettings, settings: Settings) -> dict[str, ChannelAdapter]:
    """Adapters for the channels the retailer's own settings cover (only those)."""
    covered = channel_providers(row)
    adapters: dict[str, ChannelAdapter] = {}
    if covered["email"] == "sendgrid":
        assert row.sendgrid_api_key_enc and row.sendgrid_from_email
        sender = (
            formataddr((row.sendgrid_from_name, row.sendgrid_from_email))
            if row.sendgrid_from_name
            else row.sendgrid_from_email
        )
        adapters["email"] = SendGridEmailAdapter(
            api_key=decrypt(settings, row.sendgrid_api_key_enc),
            from_email=sender,
            base_url=settings.sendgrid_base_url,
            template_ids=row.sendgrid_template_ids or {},
            sandbox=row.sendgrid_sandbox,
        )
    if "twilio" in (covered["sms"], covered["voice"]):
        assert row.twilio_account_sid
        if row.twilio_api_key_sid and row.twilio_api_key_secret_enc:
            api_key_sid: str | None = row.twilio_api_key_sid
            secret = decrypt(settings, row.twilio_api_key_secret_enc)
        else:
            assert row.twilio_auth_token_enc
            api_key_sid, secret = None, decrypt(settings, row.twilio_auth_token_enc)
        if covered["sms"] == "twilio":
            adapters["sms"] = TwilioSmsAdapter(
                account_sid=row.twilio_account_sid,
                auth_token=secret,
                from_number=row.twilio_from_number or "",
                base_url=settings.twilio_base_url,
                api_key_sid=api_key_sid,
                messaging_service_sid=row.twilio_messaging_service_sid,
            )
        if covered["voice"] == "twilio":
            voice_from = row.twilio_voice_number or row.twilio_from_number
            assert voice_from
            adapters["voice"] = TwilioVoiceAdapter(
                account_sid=row.twilio_account_sid,
                auth_token=secret,
                from_number=voice_from,
                base_url=settings.twilio_base_url,
                api_key_sid=api_key_sid,
            )
    return adapters
