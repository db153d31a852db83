"""Publishable keys for the storefront snippet, and the identity secret that signs shoppers.

Managed with the retailer's secret `X-API-Key`; the publishable key itself can do none of this.
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from api.deps import RetailerDep, SessionDep, SettingsDep
from winback.customers.signed_identity import (
    IdentitySecret,
    IdentitySecretCreated,
    IdentitySecretStatus,
    rotate_identity_secret,
)
from winback.platform.clock import utcnow
from winback.retailers import lookups
from winback.retailers.publishable_keys import (
    PublishableKey,
    PublishableKeyIn,
    PublishableKeyPublic,
    PublishableKeyUpdate,
    create_key,
    get_key,
    list_keys,
    public_view,
    rotate_key,
)

router = APIRouter(prefix="/v1", tags=["storefront keys"])
KeyId = Annotated[int, Path(ge=1, le=2**62)]


async def _key_or_404(session: SessionDep, retailer_id: str, key_id: int) -> PublishableKey:
    row = await get_key(session, retailer_id=retailer_id, key_id=key_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no publishable key {key_id}")
    return row


@router.post(
    "/publishable-keys", response_model=PublishableKeyPublic, status_code=status.HTTP_201_CREATED
)
async def create_publishable_key(
    body: PublishableKeyIn, retailer: RetailerDep, session: SessionDep
) -> PublishableKeyPublic:
    """A key for `winback.js`, usable only from `allowed_origins` and only on `/v1/client`."""
    row = await create_key(
        session, retailer_id=retailer.id, allowed_origins=body.allowed_origins, name=body.name
    )
    return public_view(row)


@router.get("/publishable-keys", response_model=list[PublishableKeyPublic])
async def list_publishable_keys(
    retailer: RetailerDep, session: SessionDep
) -> list[PublishableKeyPublic]:
    """The retailer's keys, rotated ones included until their grace ends."""
    return [public_view(r) for r in await list_keys(session, retailer_id=retailer.id)]


@router.patch("/publishable-keys/{key_id}", response_model=PublishableKeyPublic)
async def update_publishable_key(
    key_id: KeyId, body: PublishableKeyUpdate, retailer: RetailerDep, session: SessionDep
) -> PublishableKeyPublic:
    """Renames a key or replaces its allowed origins (at once, for every page)."""
    row = await _key_or_404(session, retailer.id, key_id)
    if "name" in body.model_fields_set:
        row.name = body.name
    if body.allowed_origins is not None:
        row.allowed_origins = body.allowed_origins
    session.add(row)
    lookups.invalidate()  # this process at once; the others within lookups.TTL_SECONDS
    return public_view(row)


@router.post(
    "/publishable-keys/{key_id}/rotate",
    response_model=PublishableKeyPublic,
    status_code=status.HTTP_201_CREATED,
)
async def rotate_publishable_key(
    key_id: KeyId,
    retailer: RetailerDep,
    session: SessionDep,
    grace_hours: Annotated[
        float, Query(ge=0, le=24 * 30, description="How long the old key keeps working.")
    ] = 24,
) -> PublishableKeyPublic:
    """A new key with the same origins; the old one keeps working for `grace_hours` (pages
    cached with it), then stops."""
    old = await _key_or_404(session, retailer.id, key_id)
    fresh = await rotate_key(session, old=old, grace=timedelta(hours=grace_hours))
    lookups.invalidate()
    return public_view(fresh)


@router.delete(
    "/publishable-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def revoke_publishable_key(key_id: KeyId, retailer: RetailerDep, session: SessionDep) -> None:
    """Stops the key at once."""
    row = await _key_or_404(session, retailer.id, key_id)
    row.expires_at = utcnow()
    session.add(row)
    lookups.invalidate()


@router.get("/identity-secret", response_model=IdentitySecretStatus)
async def read_identity_secret(retailer: RetailerDep, session: SessionDep) -> IdentitySecretStatus:
    """Whether the retailer has an identity secret (never its value)."""
    row = await session.get(IdentitySecret, retailer.id)
    return IdentitySecretStatus(set=row is not None, created_at=row.created_at if row else None)


@router.post(
    "/identity-secret", response_model=IdentitySecretCreated, status_code=status.HTTP_201_CREATED
)
async def create_identity_secret(
    retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> IdentitySecretCreated:
    """Creates (or replaces) the secret your backend signs shoppers' email, phone and id with
    (HMAC-SHA256, see the README). Shown once; signatures made with an old one stop counting."""
    return await rotate_identity_secret(session, retailer_id=retailer.id, settings=settings)
