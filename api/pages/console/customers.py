"""Looking a customer up from the console, by phone in any format or by email, exactly as
``GET /v1/customers/lookup`` does (the same domain functions, the same retailer scoping)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.pages.console.auth import ConsoleUserDep
from api.pages.console.templating import render
from winback.customers.identity import EMAIL_PATTERN
from winback.customers.phones import normalize_phone
from winback.customers.view import CustomerView, customer_view, find_customers
from winback.platform.clock import utcnow
from winback.retailers.models import Retailer

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/customers", response_class=HTMLResponse)
async def lookup_page(
    request: Request,
    user: ConsoleUserDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=320)] = "",
) -> HTMLResponse:
    """A phone number (any format) or an email address; the panels of whoever matches."""
    q = q.strip()
    found: list[CustomerView] = []
    error = None
    retailer = await session.get(Retailer, user.agent.retailer_id)
    assert retailer is not None  # an agent's retailer is kept by its foreign key
    if q:
        phone = email = None
        if "@" in q:
            if EMAIL_PATTERN.fullmatch(q):
                email = q
            else:
                error = f"{q!r} is not an email address."
        else:
            try:
                phone = normalize_phone(q, retailer.country)
            except ValueError:
                error = f"{q!r} is not a phone number or an email address."
        if error is None:
            customers = await find_customers(
                session, retailer_id=retailer.id, phone=phone, email=email
            )
            now = utcnow()
            found = [
                await customer_view(session, retailer=retailer, customer=c, now=now)
                for c in customers
            ]
            if not found:
                error = f"No customer with {q!r}."
    return render(
        request,
        "console/customers.html",
        {"user": user, "agent": user.agent, "q": q, "customers": found, "error": error},
        status_code=200 if error is None or not q else 404 if "No customer" in error else 422,
    )
