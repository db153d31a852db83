"""A customer's consent per channel, and the history of its changes."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict

from api.deps import RetailerDep, SessionDep
from winback.customers.consent import consent_history, set_consent
from winback.customers.consent_models import CONSENT_CHANNELS
from winback.customers.models import Customer
from winback.platform.clock import utcnow

router = APIRouter(prefix="/v1/customers", tags=["customers"])
# Ids are 32-bit on PostgreSQL and 64-bit on SQLite: a larger number names no customer.
CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The customer's id.")]


class ConsentNow(BaseModel):
    email: bool
    sms: bool
    voice: bool


class ConsentChangePublic(BaseModel):
    channel: str
    granted: bool
    source: str
    at: datetime


class CustomerConsent(BaseModel):
    customer_id: int
    consent: ConsentNow
    history: list[ConsentChangePublic]


class ConsentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    sms: bool | None = None
    voice: bool | None = None


async def _customer(session: SessionDep, retailer_id: str, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.retailer_id != retailer_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    return customer


async def _view(session: SessionDep, customer: Customer) -> CustomerConsent:
    assert customer.id is not None
    history = await consent_history(session, customer)
    return CustomerConsent(
        customer_id=customer.id,
        consent=ConsentNow(
            email=customer.consent_email, sms=customer.consent_sms, voice=customer.consent_voice
        ),
        history=[ConsentChangePublic(**vars(entry)) for entry in history],
    )


@router.get("/{customer_id}/consent", response_model=CustomerConsent)
async def get_consent(
    customer_id: CustomerId, retailer: RetailerDep, session: SessionDep
) -> CustomerConsent:
    """The customer's consent per channel now, and every change (source and time), oldest
    first."""
    return await _view(session, await _customer(session, retailer.id, customer_id))


@router.put("/{customer_id}/consent", response_model=CustomerConsent)
async def put_consent(
    customer_id: CustomerId, body: ConsentUpdate, retailer: RetailerDep, session: SessionDep
) -> CustomerConsent:
    """Grants or withdraws consent on the channels given (source `api`); a channel left out
    keeps its consent. Only actual changes enter the history."""
    customer = await _customer(session, retailer.id, customer_id)
    now = utcnow()
    for channel in CONSENT_CHANNELS:
        granted = getattr(body, channel)
        if granted is not None:
            await set_consent(session, customer, channel, granted, "api", now)
    await session.flush()
    return await _view(session, customer)
