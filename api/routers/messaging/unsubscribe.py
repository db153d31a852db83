"""One-click unsubscribe (RFC 8058): the link in every email's ``List-Unsubscribe`` header.

No API key: the signed token is the authority. GET only shows a page that confirms (mail
scanners prefetch links, so GET never changes anything); POST unsubscribes, and is idempotent.
"""

import html
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, SettingsDep, TemporalClientDep
from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.customers.opt_outs import stop_contact, tell_workflows
from winback.messaging.unsubscribe import InvalidToken, UnsubscribeTarget, verify_token
from winback.platform.db import retry_on_conflict
from winback.platform.settings import Settings
from winback.retailers.models import Retailer

router = APIRouter(prefix="/v1/unsubscribe", tags=["unsubscribe"])

Token = Annotated[str, Path(max_length=500, description="The signed token from the link.")]
CHANNEL_NAMES = {"email": "emails", "sms": "text messages", "voice": "calls"}


async def _target(
    session: SessionDep, settings: Settings, token: str
) -> tuple[UnsubscribeTarget, Retailer, Customer]:
    try:
        target = verify_token(token, settings=settings)
    except InvalidToken as err:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid unsubscribe link") from err
    retailer = await session.get(Retailer, target.retailer_id)
    customer = await session.get(Customer, target.customer_id)
    if retailer is None or customer is None or customer.retailer_id != retailer.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown unsubscribe link")
    return target, retailer, customer


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:32rem;margin:3rem auto'>"
        f"{body}</body></html>"
    )


@router.get("/{token}", response_class=HTMLResponse)
async def confirm_page(token: Token, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """A page asking the shopper to confirm; its button POSTs the one-click form."""
    target, retailer, _ = await _target(session, settings, token)
    what = CHANNEL_NAMES[target.channel]
    store = html.escape(retailer.name)
    body = (
        f"<h1>Unsubscribe</h1><p>Stop {what} about your cart from {store}?</p>"
        "<form method='post'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form>"
    )
    return HTMLResponse(_page(f"Unsubscribe from {retailer.name}", body))


@router.post("/{token}", response_class=HTMLResponse)
async def one_click_unsubscribe(
    token: Token, session: SessionDep, settings: SettingsDep, client: TemporalClientDep
) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe (body ``List-Unsubscribe=One-Click``): consent off for the
    link's channel, the address suppressed, and the cart workflows stopped if no channel is left.
    Repeating it changes nothing more."""

    async def unsubscribe() -> tuple[UnsubscribeTarget, Retailer, list[Cart]]:
        target, retailer, customer = await _target(session, settings, token)
        carts = await stop_contact(
            session,
            retailer_id=retailer.id,
            channels=[target.channel],
            address=customer.address_for(target.channel),
            customers=[customer],
            reason="unsubscribe_link",
        )
        return target, retailer, carts

    # A mailbox provider's one-click POST is rarely sent twice, so a deadlock with a worker
    # writing the same cart (PostgreSQL picks one loser) is retried here, not answered 503.
    target, retailer, carts = await retry_on_conflict(session, unsubscribe)
    await session.commit()
    await tell_workflows(
        session, client, task_queue=settings.task_queue, retailer=retailer, carts=carts
    )
    what = CHANNEL_NAMES[target.channel]
    store = html.escape(retailer.name)
    body = f"<h1>Unsubscribed</h1><p>You will get no more {what} from {store}.</p>"
    return HTMLResponse(_page("Unsubscribed", body))
