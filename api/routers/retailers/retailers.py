"""Retailers: created by the operator (admin token); each gets its API key once."""

import secrets

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import AdminDep, RetailerDep, SessionDep, SettingsDep, hash_key
from winback.platform.outbound_urls import UnsafeUrl, check_outbound_url
from winback.platform.settings import Settings
from winback.retailers import lookups
from winback.retailers.models import (
    ApiKey,
    Retailer,
    RetailerCreate,
    RetailerCreated,
    RetailerPublic,
    RetailerUpdate,
)

router = APIRouter(prefix="/v1", tags=["retailers"])


@router.post("/retailers", response_model=RetailerCreated, status_code=status.HTTP_201_CREATED)
async def create_retailer(
    body: RetailerCreate, session: SessionDep, settings: SettingsDep, _: AdminDep
) -> RetailerCreated:
    """Creates a retailer and returns its API key and webhook secret (shown only here)."""
    if await session.get(Retailer, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"retailer {body.id!r} already exists")
    if body.webhook_url is not None:
        await _check_webhook_url(body.webhook_url, settings)
    retailer = Retailer.model_validate(body, update={"webhook_secret": secrets.token_urlsafe(32)})
    api_key = f"wb_{body.id}_{secrets.token_urlsafe(24)}"
    session.add(retailer)
    await session.flush()
    session.add(ApiKey(retailer_id=retailer.id, key_hash=hash_key(api_key)))
    await session.flush()
    return RetailerCreated(
        **RetailerPublic.model_validate(retailer).model_dump(),
        api_key=api_key,
        webhook_secret=retailer.webhook_secret,
    )


@router.get("/retailer", response_model=RetailerPublic)
async def read_my_retailer(retailer: RetailerDep) -> Retailer:
    """The retailer the API key belongs to."""
    return retailer


@router.patch("/retailer", response_model=RetailerPublic)
async def update_my_retailer(
    body: RetailerUpdate, retailer: RetailerDep, session: SessionDep, settings: SettingsDep
) -> Retailer:
    """Changes the store's name, time zone, cart link or nudge webhook URL."""
    changes = body.model_dump(exclude_unset=True)
    required = [f for f in ("name", "timezone", "cart_url_template") if f in changes]
    if nulls := [f for f in required if changes[f] is None]:
        raise RequestValidationError(
            [{"loc": ("body", f), "msg": "cannot be null", "type": "value_error"} for f in nulls]
        )
    if changes.get("webhook_url") is not None:
        try:
            RetailerCreate.model_validate(
                {"id": retailer.id, "name": retailer.name, "webhook_url": changes["webhook_url"]}
            )
        except ValidationError as err:
            raise RequestValidationError(err.errors()) from None
        await _check_webhook_url(changes["webhook_url"], settings)
    retailer.sqlmodel_update(changes)
    session.add(retailer)
    lookups.invalidate()  # this process at once; the others within lookups.TTL_SECONDS
    return retailer


async def _check_webhook_url(url: str, settings: Settings) -> None:
    """Our worker POSTs to this URL: it must lead to the public internet (no SSRF)."""
    try:
        await check_outbound_url(url, allow_loopback=settings.allow_loopback_urls)
    except UnsafeUrl as err:
        raise RequestValidationError(
            [{"loc": ("body", "webhook_url"), "msg": f"refused: {err}", "type": "value_error"}]
        ) from None
