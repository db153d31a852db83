"""Business units' keys: a store manager's key that reads only their store's feedback.

Made and revoked with the retailer's own `X-API-Key`; a unit's key can do none of this.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.exceptions import RequestValidationError

from api.deps import RetailerDep, SessionDep
from winback.feedback.alert_rules_store import current_rules
from winback.retailers.api_keys import create_unit_key, delete_unit_key, list_unit_keys
from winback.retailers.models import ApiKey, UnitKeyCreate, UnitKeyCreated, UnitKeyPublic

router = APIRouter(prefix="/v1", tags=["retailers"])
KeyId = Annotated[int, Path(ge=1, le=2**62)]


def _public(row: ApiKey) -> UnitKeyPublic:
    assert row.id is not None and row.business_unit is not None
    return UnitKeyPublic(
        id=row.id, business_unit=row.business_unit, name=row.name, created_at=row.created_at
    )


@router.post("/api-keys", response_model=UnitKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_business_unit_key(
    body: UnitKeyCreate, retailer: RetailerDep, session: SessionDep
) -> UnitKeyCreated:
    """A key for one business unit's owner (shown once): it signs in to `/dashboard` and reads
    `GET /v1/reports/feedback`, both only for that unit, and opens no other route."""
    rules = await current_rules(session, retailer_id=retailer.id)
    units = [unit.id for unit in rules.business_units] if rules else []
    if body.business_unit not in units:
        known = ", ".join(units) or "none yet (PUT /v1/alert-rules first)"
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "business_unit"),
                    "msg": f"unknown business unit {body.business_unit!r}; known: {known}",
                    "type": "value_error",
                }
            ]
        )
    row, plain = await create_unit_key(
        session, retailer_id=retailer.id, business_unit=body.business_unit, name=body.name
    )
    return UnitKeyCreated(**_public(row).model_dump(), api_key=plain)


@router.get("/api-keys", response_model=list[UnitKeyPublic])
async def list_business_unit_keys(
    retailer: RetailerDep, session: SessionDep
) -> list[UnitKeyPublic]:
    """The business units' keys (never the keys themselves, only their ids and units)."""
    return [_public(row) for row in await list_unit_keys(session, retailer_id=retailer.id)]


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_business_unit_key(
    key_id: KeyId, retailer: RetailerDep, session: SessionDep
) -> Response:
    """Revokes a unit's key at once; dashboard sessions signed in with it end too."""
    if not await delete_unit_key(session, retailer_id=retailer.id, key_id=key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no business unit key {key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
