"""Who a shopper is: the contact a cart event, a survey answer or a platform webhook gives,
validated, and matched to the same customer across carts and answers (the retailer's id, else
email, else phone), with consent changes recorded as they arrive."""

import re
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.customers.consent import set_consent
from winback.customers.models import Customer
from winback.customers.phones import normalize_phone
from winback.platform.clock import utcnow
from winback.platform.errors import InputFieldError
from winback.retailers.models import check_timezone
from workflows.vocabulary import PROVIDER_CHANNELS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CustomerIn(_Strict):
    id: str | None = Field(default=None, max_length=200, description="The retailer's customer id.")
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40, description="Any format; kept as E.164.")
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=20)
    timezone: str | None = Field(default=None, max_length=64)
    country: str | None = Field(
        default=None, min_length=2, max_length=2, description="Region for local phone formats."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address")
        return value.lower() if value else value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _phone(self) -> Self:
        """International numbers are checked here; national ones (no '+' and no ``country``)
        are read in the store's country by ``record_event``."""
        if self.phone is not None and (self.country or self.phone.strip().startswith("+")):
            self.phone = normalize_phone(self.phone, self.country.upper() if self.country else None)
        return self


class ConsentIn(_Strict):
    email: bool | None = None
    sms: bool | None = None
    voice: bool | None = None


async def upsert_customer(
    session: AsyncSession,
    *,
    retailer_id: str,
    given: CustomerIn | None,
    consent: ConsentIn | None = None,
    existing: Customer | None = None,
    consent_source: str = "cart_event",
    at: datetime | None = None,
) -> Customer:
    """The same shopper across carts and answers: found by the retailer's id, else email, else
    phone; created if new; updated with whatever the event tells. A consent flag that changes
    is recorded in the consent history with ``consent_source``."""
    customer = existing
    if customer is None and given is not None:
        customer = await _match_customer(session, retailer_id, given)
    if customer is None:
        customer = Customer(retailer_id=retailer_id)
    if given is not None:
        for field in ("email", "phone", "name", "locale", "timezone"):
            value = getattr(given, field)
            if value is not None:
                setattr(customer, field, value)
        if given.id is not None:
            customer.external_id = given.id
    now = at or utcnow()
    customer.updated_at = now
    session.add(customer)
    if consent is not None:
        for channel in PROVIDER_CHANNELS:
            value = getattr(consent, channel)
            if value is not None:
                await set_consent(session, customer, channel, value, consent_source, now)
    await session.flush()
    return customer


def normalize_national_phone(given: CustomerIn | None, country: str) -> None:
    """Reads a phone number given without '+' (and without ``country``) in the store's country."""
    if given is not None and given.phone and given.phone[0] != "+":
        try:
            given.phone = normalize_phone(given.phone, country)
        except ValueError as err:
            raise InputFieldError("customer.phone", f"{err} (read in {country})") from err


async def _match_customer(
    session: AsyncSession, retailer_id: str, given: CustomerIn
) -> Customer | None:
    """The same shopper across carts: by the retailer's id, else email, else phone."""
    for field, value in (("external_id", given.id), ("email", given.email), ("phone", given.phone)):
        if value:
            query = select(Customer).where(
                Customer.retailer_id == retailer_id, getattr(Customer, field) == value
            )
            found = (await session.exec(query)).first()
            if found is not None:
                return found
    return None
