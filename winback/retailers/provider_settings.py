"""A retailer's own SendGrid and Twilio accounts. Secrets are stored Fernet-encrypted (columns
ending in ``_enc``) and never leave the API: the public model only says which are set."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, field_validator
from sqlmodel import Field, SQLModel

from winback.customers.phones import normalize_phone
from winback.platform.columns import json_column, utc_column
from winback.platform.sendgrid_keys import normalize_sendgrid_public_key

ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
DYNAMIC_TEMPLATE_ID = re.compile(r"^d-[0-9a-fA-F]{32}$")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_\-]{1,100}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SECRET_FIELDS = ("sendgrid_api_key", "twilio_auth_token", "twilio_api_key_secret")


class ProviderSettings(SQLModel, table=True):
    __tablename__ = "provider_settings"

    retailer_id: str = Field(foreign_key="retailer.id", primary_key=True, max_length=40)
    sendgrid_api_key_enc: str | None = None
    sendgrid_from_email: str | None = Field(default=None, max_length=320)
    sendgrid_from_name: str | None = Field(default=None, max_length=200)
    sendgrid_template_ids: dict[str, str] = json_column()
    sendgrid_webhook_public_key: str | None = Field(default=None, max_length=1000)
    twilio_account_sid: str | None = Field(default=None, max_length=34)
    twilio_auth_token_enc: str | None = None
    twilio_api_key_sid: str | None = Field(default=None, max_length=34)
    twilio_api_key_secret_enc: str | None = None
    twilio_messaging_service_sid: str | None = Field(default=None, max_length=34)
    twilio_from_number: str | None = Field(default=None, max_length=20)
    twilio_voice_number: str | None = Field(default=None, max_length=20)
    sendgrid_sandbox: bool = False  # SendGrid validates but delivers nothing: for test sends
    sms_help_text: str | None = Field(default=None, max_length=320)
    sms_reply_opens_task: bool = False  # a free-text reply asks an agent to call back
    # Where a shopper's call to the store's Twilio number goes: dialled through to this number,
    # else put in the Twilio queue named after the Winback queue the caller is routed to.
    inbound_call_forward_to: str | None = Field(default=None, max_length=20)
    updated_at: datetime = utc_column(nullable=False, default_now=True)


def _match(pattern: re.Pattern[str], what: str, value: str | None) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not {what}")
    return value


class ProviderSettingsIn(SQLModel):
    """What ``PUT /v1/providers`` takes. Only the fields sent change; ``null`` clears one."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    sendgrid_api_key: str | None = Field(default=None, min_length=1, max_length=500)
    sendgrid_from_email: str | None = Field(default=None, max_length=320)
    sendgrid_from_name: str | None = Field(default=None, max_length=200)
    sendgrid_template_ids: dict[str, Annotated[str, Field(max_length=100)]] | None = Field(
        default=None,
        max_length=100,
        description="SendGrid dynamic template id (`d-…`) per Winback template name.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        max_length=1000,
        description="The Event Webhook verification key (Mail Settings > Signed Event Webhook), "
        "base64 DER as SendGrid shows it or PEM; stored and shown as base64 DER. Verifies the "
        "events SendGrid posts to `/v1/webhooks/sendgrid/{retailer_id}` (unset: the operator's).",
    )
    twilio_account_sid: str | None = Field(
        default=None, max_length=34, description="`AC` + 32 hex digits."
    )
    twilio_auth_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="The account's auth token. Twilio signs its webhooks with it (never with an "
        "API key), so it is needed to accept this account's status callbacks, texts and key "
        "presses even when texts and calls are sent with an API key.",
    )
    twilio_api_key_sid: str | None = Field(
        default=None,
        max_length=34,
        description="`SK…`: an API key, used with its secret instead of the token.",
    )
    twilio_api_key_secret: str | None = Field(default=None, min_length=1, max_length=500)
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        max_length=34,
        description="`MG…`: texts go through it (else from the from-number).",
    )
    twilio_from_number: str | None = Field(
        default=None, max_length=40, description="E.164, sends texts."
    )
    twilio_voice_number: str | None = Field(
        default=None,
        max_length=40,
        description="E.164, places calls (defaults to the from-number).",
    )

    sendgrid_sandbox: bool | None = Field(
        default=None, description="SendGrid's sandbox mode: requests are checked, nothing sent."
    )
    sms_help_text: str | None = Field(
        default=None, min_length=1, max_length=320, description="The answer to HELP."
    )
    sms_reply_opens_task: bool | None = Field(
        default=None, description="A free-text SMS reply opens an agent callback task."
    )
    inbound_call_forward_to: str | None = Field(
        default=None,
        max_length=40,
        description="E.164: a shopper's call to the store's number is forwarded here "
        "(`<Dial>`); unset, it waits in the Twilio queue named after its Winback queue "
        "(`<Enqueue>`). Either way the agents' console pops the caller's panel first.",
    )

    @field_validator("sendgrid_sandbox", "sms_reply_opens_task")
    @classmethod
    def _flag(cls, value: bool | None) -> bool:
        return bool(value)  # null turns a flag off

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _webhook_key(cls, value: str | None) -> str | None:
        return normalize_sendgrid_public_key(value) if value is not None else None

    @field_validator("sendgrid_from_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _match(EMAIL, "an email address", value)

    @field_validator("twilio_account_sid")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return _match(ACCOUNT_SID, "a Twilio account SID (AC + 32 hex digits)", value)

    @field_validator("twilio_api_key_sid")
    @classmethod
    def _api_key(cls, value: str | None) -> str | None:
        return _match(API_KEY_SID, "a Twilio API key SID (SK + 32 hex digits)", value)

    @field_validator("twilio_messaging_service_sid")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        return _match(
            MESSAGING_SERVICE_SID, "a Twilio Messaging Service SID (MG + 32 hex digits)", value
        )

    @field_validator("twilio_from_number", "twilio_voice_number", "inbound_call_forward_to")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("+"):
            raise ValueError(f"{value!r} is not in E.164 form (+ and country code)")
        return normalize_phone(value)

    @field_validator("sendgrid_template_ids")
    @classmethod
    def _templates(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, template_id in (value or {}).items():
            _match(TEMPLATE_NAME, "a template name", name)
            _match(DYNAMIC_TEMPLATE_ID, f"a SendGrid dynamic template id (for {name})", template_id)
        return value


class ProviderSettingsPublic(SQLModel):
    """A retailer's provider settings as the API shows them: never a secret, only whether it is
    set, and which provider each channel goes through."""

    sendgrid_api_key_set: bool = False
    sendgrid_from_email: str | None = None
    sendgrid_from_name: str | None = None
    sendgrid_template_ids: dict[str, str] = Field(default_factory=dict)
    sendgrid_webhook_public_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token_set: bool = False
    twilio_api_key_sid: str | None = None
    twilio_api_key_secret_set: bool = False
    twilio_messaging_service_sid: str | None = None
    twilio_from_number: str | None = None
    twilio_voice_number: str | None = None
    sendgrid_sandbox: bool = False
    sms_help_text: str | None = None
    sms_reply_opens_task: bool = False
    inbound_call_forward_to: str | None = None
    channels: dict[str, str] = Field(
        default_factory=dict,
        description="The provider each channel uses for this retailer: `sendgrid`, `twilio`, or "
        "`default` (the process-wide provider, else the outbox).",
    )
    webhooks: dict[str, str] = Field(
        default_factory=dict,
        description="Whose credentials verify each provider's webhooks for this retailer: "
        "`retailer` (its own key or token), `default` (the process-wide one), or `missing` "
        "(its own account lacks what verifies them: the webhooks are refused).",
    )
    updated_at: datetime | None = None


def webhook_verification(row: ProviderSettings | None) -> dict[str, str]:
    """Whose key verifies this retailer's SendGrid and Twilio webhooks. Twilio signs with the
    account's auth token, so a retailer on its own account with only an API key is `missing`."""
    if row is None:
        return {"sendgrid": "default", "twilio": "default"}
    if row.twilio_auth_token_enc:
        twilio = "retailer"
    elif row.twilio_account_sid:
        twilio = "missing"
    else:
        twilio = "default"
    return {
        "sendgrid": "retailer" if row.sendgrid_webhook_public_key else "default",
        "twilio": twilio,
    }


def channel_providers(row: ProviderSettings | None) -> dict[str, str]:
    """Which channels the retailer's own settings cover (the rest use the defaults)."""
    if row is None:
        return {"email": "default", "sms": "default", "voice": "default"}
    twilio_auth = bool(
        row.twilio_account_sid
        and (
            row.twilio_auth_token_enc or (row.twilio_api_key_sid and row.twilio_api_key_secret_enc)
        )
    )
    return {
        "email": "sendgrid" if row.sendgrid_api_key_enc and row.sendgrid_from_email else "default",
        "sms": "twilio"
        if twilio_auth and (row.twilio_messaging_service_sid or row.twilio_from_number)
        else "default",
        "voice": "twilio"
        if twilio_auth and (row.twilio_voice_number or row.twilio_from_number)
        else "default",
    }


def incomplete(row: ProviderSettings) -> list[tuple[str, str]]:
    """What the merged settings still lack, as (field, message): half a provider is refused."""
    problems = []
    if row.sendgrid_api_key_enc and not row.sendgrid_from_email:
        problems.append(("sendgrid_from_email", "needed to send with sendgrid_api_key"))
    if (row.sendgrid_from_email or row.sendgrid_from_name) and not row.sendgrid_api_key_enc:
        problems.append(("sendgrid_api_key", "needed for the SendGrid sender to be used"))
    if row.twilio_api_key_sid and not row.twilio_api_key_secret_enc:
        problems.append(("twilio_api_key_secret", "needed with twilio_api_key_sid"))
    if row.twilio_api_key_secret_enc and not row.twilio_api_key_sid:
        problems.append(("twilio_api_key_sid", "needed with twilio_api_key_secret"))
    twilio_given = any(
        (
            row.twilio_auth_token_enc,
            row.twilio_api_key_sid,
            row.twilio_messaging_service_sid,
            row.twilio_from_number,
            row.twilio_voice_number,
        )
    )
    if twilio_given and not row.twilio_account_sid:
        problems.append(("twilio_account_sid", "needed for any Twilio setting"))
    if row.twilio_account_sid:
        if not (row.twilio_auth_token_enc or row.twilio_api_key_sid):
            problems.append(
                ("twilio_auth_token", "needed (or twilio_api_key_sid + twilio_api_key_secret)")
            )
        if not (
            row.twilio_messaging_service_sid or row.twilio_from_number or row.twilio_voice_number
        ):
            problems.append(
                (
                    "twilio_from_number",
                    "needed (or twilio_messaging_service_sid, or twilio_voice_number)",
                )
            )
    return problems


def public_view(row: ProviderSettings | None) -> ProviderSettingsPublic:
    if row is None:
        return ProviderSettingsPublic(
            channels=channel_providers(None), webhooks=webhook_verification(None)
        )
    return ProviderSettingsPublic(
        sendgrid_api_key_set=row.sendgrid_api_key_enc is not None,
        sendgrid_from_email=row.sendgrid_from_email,
        sendgrid_from_name=row.sendgrid_from_name,
        sendgrid_template_ids=dict(row.sendgrid_template_ids or {}),
        sendgrid_webhook_public_key=row.sendgrid_webhook_public_key,
        twilio_account_sid=row.twilio_account_sid,
        twilio_auth_token_set=row.twilio_auth_token_enc is not None,
        twilio_api_key_sid=row.twilio_api_key_sid,
        twilio_api_key_secret_set=row.twilio_api_key_secret_enc is not None,
        twilio_messaging_service_sid=row.twilio_messaging_service_sid,
        twilio_from_number=row.twilio_from_number,
        twilio_voice_number=row.twilio_voice_number,
        sendgrid_sandbox=row.sendgrid_sandbox,
        sms_help_text=row.sms_help_text,
        sms_reply_opens_task=row.sms_reply_opens_task,
        inbound_call_forward_to=row.inbound_call_forward_to,
        channels=channel_providers(row),
        webhooks=webhook_verification(row),
        updated_at=row.updated_at,
    )
