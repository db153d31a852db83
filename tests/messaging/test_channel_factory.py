"""adapters_from_settings: a provider where its keys are set, the outbox everywhere else."""

from pydantic import SecretStr

from winback.messaging.channels.factory import adapters_from_settings
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.sendgrid_email import SendGridEmailAdapter
from winback.messaging.channels.twilio_channels import TwilioSmsAdapter, TwilioVoiceAdapter
from winback.platform.settings import Settings

SENDGRID_KEY = "SG.secret-key"
TWILIO_TOKEN = "twilio-secret-token"


def _settings(**overrides: object) -> Settings:
    fields: dict = {
        "sendgrid_api_key": None,
        "twilio_account_sid": None,
        "twilio_auth_token": None,
        "twilio_from_number": None,
        "twilio_base_url": None,
    }
    fields.update(overrides)
    return Settings(_env_file=None, **fields)


def _twilio(**overrides: object) -> dict:
    return {
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": SecretStr(TWILIO_TOKEN),
        "twilio_from_number": "+15005550006",
    } | overrides


def test_no_keys_means_outbox_for_every_channel() -> None:
    adapters = adapters_from_settings(_settings())

    assert set(adapters) == {"email", "sms", "voice"}
    assert all(isinstance(a, OutboxAdapter) for a in adapters.values())


def test_sendgrid_key_gives_sendgrid_email_only() -> None:
    adapters = adapters_from_settings(_settings(sendgrid_api_key=SecretStr(SENDGRID_KEY)))

    assert isinstance(adapters["email"], SendGridEmailAdapter)
    assert isinstance(adapters["sms"], OutboxAdapter)
    assert isinstance(adapters["voice"], OutboxAdapter)


def test_complete_twilio_settings_give_twilio_sms_and_voice() -> None:
    adapters = adapters_from_settings(_settings(**_twilio()))

    assert isinstance(adapters["email"], OutboxAdapter)
    assert isinstance(adapters["sms"], TwilioSmsAdapter)
    assert isinstance(adapters["voice"], TwilioVoiceAdapter)


def test_incomplete_twilio_settings_fall_back_to_the_outbox() -> None:
    for missing in ("twilio_account_sid", "twilio_auth_token", "twilio_from_number"):
        adapters = adapters_from_settings(_settings(**_twilio(**{missing: None})))
        assert isinstance(adapters["sms"], OutboxAdapter), missing
        assert isinstance(adapters["voice"], OutboxAdapter), missing


def test_all_keys_give_all_providers_and_no_secret_in_their_reprs() -> None:
    adapters = adapters_from_settings(
        _settings(sendgrid_api_key=SecretStr(SENDGRID_KEY), **_twilio())
    )

    assert [a.name for a in adapters.values()] == ["sendgrid", "twilio", "twilio"]
    shown = repr(adapters)
    assert SENDGRID_KEY not in shown
    assert TWILIO_TOKEN not in shown
