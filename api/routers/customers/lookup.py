"""The customer on the line: what an agent sees when a shopper calls."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError

from api.deps import CallerRetailerDep, SessionDep
from winback.customers.identity import EMAIL_PATTERN
from winback.customers.phones import normalize_phone
from winback.customers.view import (
    CustomerLookup,
    customer_view,
    find_callback_carts,
    find_customers,
)
from winback.platform.clock import utcnow

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )


@router.get("/lookup", response_model=CustomerLookup)
async def lookup_customer(
    retailer: CallerRetailerDep,
    session: SessionDep,
    phone: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Any common format; without a `+` it is read in the retailer's country.",
        ),
    ] = None,
    email: Annotated[str | None, Query(max_length=320, description="Any case.")] = None,
) -> CustomerLookup:
    """Finds the retailer's customers by phone or by email (give exactly one) and shows, for
    each, their contact and consent, open and recent carts with items and links, recent on-site
    activity, every message and nudge sent with its delivery state, their open feedback cases
    and latest survey answers, and the tasks still open about them (their carts' and their
    cases'), plus `callback_carts`: carts whose shopper asked on the site to be called back
    at this number. Works with an agent's token or the retailer's API key."""
    if (phone is None) == (email is None):
        raise _invalid("phone", "give exactly one of 'phone' or 'email'")
    e164 = None
    if phone is not None:
        try:
            e164 = normalize_phone(phone, retailer.country)
        except ValueError as err:
            raise _invalid("phone", str(err)) from None
    if email is not None and not EMAIL_PATTERN.fullmatch(email):
        raise _invalid("email", f"{email!r} is not an email address")
    customers = await find_customers(session, retailer_id=retailer.id, phone=e164, email=email)
    now = utcnow()
    callbacks = (
        await find_callback_carts(session, retailer=retailer, phone=e164, now=now) if e164 else []
    )
    if not customers and not callbacks:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer with {phone or email!r}")
    return CustomerLookup(
        phone=e164,
        email=email.lower() if email else None,
        customers=[
            await customer_view(session, retailer=retailer, customer=c, now=now) for c in customers
        ],
        callback_carts=callbacks,
    )
