"""Per-retailer provider settings: encrypted at rest, never returned, validated, per tenant."""

from typing import Any

import pytest
from sqlmodel import select

from tests.conftest import RetailerClient, Stack
from winback.platform.crypto import decrypt
from winback.platform.settings import Settings
from winback.retailers.provider_settings import ProviderSettings

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]

SENDGRID_KEY = "SG.retailer-secret-key-0123456789"
AUTH_TOKEN = "twilio-retailer-auth-token-42"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE_SID = "MG" + "fedcba9876543210" * 2
KEY_SID = "SK" + "00112233445566778899aabbccddeeff"

FULL: dict[str, Any] = {
    "sendgrid_api_key": SENDGRID_KEY,
    "sendgrid_from_email": "hello@acme.example",
    "sendgrid_from_name": "Acme",
    "sendgrid_template_ids": {"cart_reminder": "d-" + "a1" * 16},
    "twilio_account_sid": ACCOUNT_SID,
    "twilio_auth_token": AUTH_TOKEN,
    "twilio_messaging_service_sid": SERVICE_SID,
    "twilio_voice_number": "+1 415 555 2671",
}


async def _put(retailer: RetailerClient, body: dict[str, Any]) -> Any:
    return await retailer.stack.api.put("/v1/providers", headers=retailer.headers, json=body)


async def test_secrets_are_encrypted_at_rest_and_never_returned(stack: Stack) -> None:
    acme = await stack.retailer("Acme")

    put = await _put(acme, FULL)
    got = await acme.get("/v1/providers")

    assert put.status_code == 200, put.text
    assert got.status_code == 200
    for response in (put, got):
        assert SENDGRID_KEY not in response.text and AUTH_TOKEN not in response.text
    body = got.json()
    assert body["sendgrid_api_key_set"] is True and body["twilio_auth_token_set"] is True
    assert body["twilio_api_key_secret_set"] is False
    assert body["twilio_voice_number"] == "+14155552671"  # kept as E.164
    assert body["channels"] == {"email": "sendgrid", "sms": "twilio", "voice": "twilio"}
    assert "sendgrid_api_key" not in body and "twilio_auth_token" not in body

    async with stack.sessions() as session:
        stored = (
            await session.exec(
                select(
                    ProviderSettings.sendgrid_api_key_enc, ProviderSettings.twilio_auth_token_enc
                ).where(ProviderSettings.retailer_id == acme.id)
            )
        ).one()
    assert stored[0] is not None and stored[1] is not None
    assert SENDGRID_KEY not in stored[0] and AUTH_TOKEN not in stored[1]
    settings = Settings()
    assert decrypt(settings, stored[0]) == SENDGRID_KEY  # the dev key in tests
    assert decrypt(settings, stored[1]) == AUTH_TOKEN


async def test_a_partial_put_keeps_the_secrets_and_null_clears_a_field(stack: Stack) -> None:
    acme = await stack.retailer("Acme")
    assert (await _put(acme, FULL)).status_code == 200

    renamed = await _put(acme, {"sendgrid_from_name": "Acme Store", "twilio_voice_number": None})

    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["sendgrid_from_name"] == "Acme Store" and body["sendgrid_api_key_set"] is True
    assert body["twilio_voice_number"] is None
    assert body["channels"] == {"email": "sendgrid", "sms": "twilio", "voice": "default"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"twilio_account_sid": "XX" + "0" * 32}, "twilio_account_sid"),
        ({"twilio_account_sid": "AC123"}, "twilio_account_sid"),
        ({"twilio_messaging_service_sid": "AC" + "0" * 32}, "twilio_messaging_service_sid"),
        ({"twilio_api_key_sid": "AK" + "0" * 32}, "twilio_api_key_sid"),
        ({"twilio_voice_number": "415 555 2671"}, "twilio_voice_number"),
        ({"twilio_from_number": "+1 555"}, "twilio_from_number"),
        ({"sendgrid_from_email": "not-an-email"}, "sendgrid_from_email"),
        ({"sendgrid_template_ids": {"cart_reminder": "tmpl-1"}}, "sendgrid_template_ids"),
        ({"sendgrid_api_key": ""}, "sendgrid_api_key"),
        ({"sendgrid_password": "x"}, "sendgrid_password"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    acme = await stack.retailer("Acme")

    response = await _put(acme, {**FULL, **change})

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field), response.json()
    assert (await acme.get("/v1/providers")).json()["sendgrid_api_key_set"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sendgrid_api_key": SENDGRID_KEY}, "sendgrid_from_email"),
        (
            {"twilio_auth_token": AUTH_TOKEN, "twilio_from_number": "+14155552671"},
            "twilio_account_sid",
        ),
        (
            {"twilio_account_sid": ACCOUNT_SID, "twilio_from_number": "+14155552671"},
            "twilio_auth_token",
        ),
        (
            {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN},
            "twilio_from_number",
        ),
        (
            {
                "twilio_account_sid": ACCOUNT_SID,
                "twilio_api_key_sid": KEY_SID,
                "twilio_from_number": "+14155552671",
            },
            "twilio_api_key_secret",
        ),
    ],
)
async def test_half_a_provider_is_refused(stack: Stack, body: dict[str, Any], field: str) -> None:
    acme = await stack.retailer("Acme")

    response = await _put(acme, body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:"), response.json()


async def test_each_retailer_sees_and_deletes_only_its_own_settings(stack: Stack) -> None:
    acme, other = await stack.retailer("Acme"), await stack.retailer("Other")
    assert (await _put(acme, FULL)).status_code == 200

    theirs = (await other.get("/v1/providers")).json()
    deleted = await other.stack.api.delete("/v1/providers", headers=other.headers)

    assert theirs["sendgrid_api_key_set"] is False and theirs["twilio_account_sid"] is None
    assert theirs["channels"] == {"email": "default", "sms": "default", "voice": "default"}
    assert deleted.status_code == 204
    assert (await acme.get("/v1/providers")).json()["sendgrid_api_key_set"] is True

    assert (await acme.stack.api.delete("/v1/providers", headers=acme.headers)).status_code == 204
    assert (await acme.get("/v1/providers")).json()["sendgrid_api_key_set"] is False


async def test_the_providers_routes_need_a_retailer_key(stack: Stack) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await stack.api.request(method, "/v1/providers", json=FULL)
        assert response.status_code == 401, method


def _ec_public_key() -> tuple[str, str]:
    """A fresh EC public key as PEM and as SendGrid shows it (base64 DER)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


async def test_the_sendgrid_webhook_key_is_stored_as_sendgrid_shows_it(stack: Stack) -> None:
    acme = await stack.retailer("Acme")
    pem, b64 = _ec_public_key()
    before = (await acme.get("/v1/providers")).json()
    assert before["webhooks"] == {"sendgrid": "default", "twilio": "default"}

    from_pem = await _put(acme, {"sendgrid_webhook_public_key": pem})
    from_b64 = await _put(acme, {"sendgrid_webhook_public_key": b64})

    for response in (from_pem, from_b64):
        assert response.status_code == 200, response.text
        assert response.json()["sendgrid_webhook_public_key"] == b64
    got = (await acme.get("/v1/providers")).json()
    assert got["sendgrid_webhook_public_key"] == b64
    assert got["webhooks"] == {"sendgrid": "retailer", "twilio": "default"}
    assert got["channels"]["email"] == "default"  # a webhook key alone sends nothing

    cleared = await _put(acme, {"sendgrid_webhook_public_key": None})
    assert cleared.json()["sendgrid_webhook_public_key"] is None


@pytest.mark.parametrize(
    "key",
    [
        "not a key at all",
        "c2hvcnQ=",  # base64, but not DER
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        # an RSA key: SendGrid signs with ECDSA
        "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMuQq0RMGhw0gNcS3ng0BqsmCk3GFOJ84N45UYOmKFBQ1Mm3cDdnh0TF"
        "xrx7RkCNWBrN7LwhmRSvEC2MKv0JTd0CAwEAAQ==",
    ],
)
async def test_a_sendgrid_webhook_key_that_is_not_an_ec_key_is_422(stack: Stack, key: str) -> None:
    acme = await stack.retailer("Acme")
    response = await _put(acme, {"sendgrid_webhook_public_key": key})
    assert response.status_code == 422, response.text
    assert "sendgrid_webhook_public_key" in response.text
