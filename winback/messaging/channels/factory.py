"""Picks one adapter per channel from the settings: a provider when its keys are set, else the
outbox. Secrets are unwrapped only here, to hand them to the SDKs."""

from pydantic import SecretStr

from winback.messaging.channels.base import ChannelAdapter
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter
from winback.messaging.channels.twilio_channels import TwilioSmsAdapter, TwilioVoiceAdapter
from winback.platform.settings import Settings


def adapters_from_settings(settings: Settings) -> dict[str, ChannelAdapter]:
    """Adapters keyed by channel: ``"email"``, ``"sms"``, ``"voice"``."""
    outbox = OutboxAdapter()
    adapters: dict[str, ChannelAdapter] = {"email": outbox, "sms": outbox, "voice": outbox}

    sendgrid_key = _secret(settings.sendgrid_api_key)
    if sendgrid_key:
        adapters["email"] = SendGridEmailAdapter(
            api_key=sendgrid_key,
            from_email=settings.sendgrid_from_email,
            base_url=settings.sendgrid_base_url,
        )

    twilio_token = _secret(settings.twilio_auth_token)
    if settings.twilio_account_sid and twilio_token and settings.twilio_from_number:
        for channel, adapter_cls in (("sms", TwilioSmsAdapter), ("voice", TwilioVoiceAdapter)):
            adapters[channel] = adapter_cls(
                account_sid=settings.twilio_account_sid,
                auth_token=twilio_token,
                from_number=settings.twilio_from_number,
                base_url=settings.twilio_base_url,
            )

    return adapters


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
