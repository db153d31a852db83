"""A retailer's own SendGrid and Twilio accounts. Secrets are encrypted at rest and never
returned: ``GET`` says only which ones are set."""

from fastapi import APIRouter, HTTPException, Response, status

from api.deps import RetailerDep, SessionDep, SettingsDep
from winback.platform.clock import utcnow
from winback.platform.crypto import encrypt
from winback.platform.db import retry_on_conflict
from winback.retailers.provider_settings import (
    SECRET_FIELDS,
    ProviderSettings,
    ProviderSettingsIn,
    ProviderSettingsPublic,
    incomplete,
    public_view,
)

router = APIRouter(prefix="/v1/providers", tags=["providers"])


@router.get("", response_model=ProviderSettingsPublic)
async def get_providers(retailer: RetailerDep, session: SessionDep) -> ProviderSettingsPublic:
    """The retailer's provider settings without their secrets (`…_set` tells whether each
    is stored), and which provider each channel goes through."""
    return public_view(await session.get(ProviderSettings, retailer.id))


@router.put("", response_model=ProviderSettingsPublic)
async def put_providers(
    body: ProviderSettingsIn, retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> ProviderSettingsPublic:
    """Sets the retailer's SendGrid and Twilio settings. Only the fields sent change (`null`
    clears one), so a secret need not be sent again to change the sender. The result must be a
    whole provider (a SendGrid key with a sender; a Twilio account SID with a token or API key
    and a number or Messaging Service), else 422 naming the missing field. The next send uses
    the new settings."""

    async def upsert() -> ProviderSettings:
        row = await session.get(ProviderSettings, retailer.id) or ProviderSettings(
            retailer_id=retailer.id
        )
        for field in body.model_fields_set:
            value = getattr(body, field)
            if field in SECRET_FIELDS:
                secret = encrypt(settings, value) if value is not None else None
                setattr(row, f"{field}_enc", secret)
            elif field == "sendgrid_template_ids":
                row.sendgrid_template_ids = dict(value or {})
            else:
                setattr(row, field, value)
        problems = incomplete(row)
        if problems:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "; ".join(f"{field}: {message}" for field, message in problems),
            )
        row.updated_at = utcnow()
        session.add(row)
        return row

    # Two first PUTs at once: the loser of the insert applies its fields to the winner's row.
    return public_view(await retry_on_conflict(session, upsert, keep=[retailer]))


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_providers(retailer: RetailerDep, session: SessionDep) -> Response:
    """Forgets the retailer's provider settings: its messages go through the default providers
    (the outbox unless the operator set process-wide keys)."""
    row = await session.get(ProviderSettings, retailer.id)
    if row is not None:
        await session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
