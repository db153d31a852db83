"""One-click unsubscribe links (RFC 8058): signed per retailer, customer and channel."""

import pytest
from sqlmodel import select

from tests.conftest import ADMIN_TOKEN, RetailerClient, Stack
from tests.support.api import signals
from tests.support.helpers import SHOPPER, items
from winback.customers.consent_models import ConsentChange
from winback.customers.models import Customer
from winback.messaging.models import Suppression
from winback.messaging.unsubscribe import (
    InvalidToken,
    make_token,
    unsubscribe_url,
    verify_token,
)
from winback.platform.settings import Settings

# Nothing here depends on the server clock starting at the wall clock: one shared server.
pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]

SETTINGS = Settings(admin_token=ADMIN_TOKEN)  # type: ignore[arg-type]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    return await stack.retailer()


async def start_cart(retailer: RetailerClient, cart_id: str, consent: dict[str, bool]) -> Customer:
    accepted = await retailer.event(
        cart_id, "item_added", items=items(80), customer=SHOPPER, consent=consent
    )
    assert accepted["workflow_actions"] == ["queued"], accepted  # the relay starts it
    return await shopper(retailer.stack, retailer.id)


async def shopper(stack: Stack, retailer_id: str) -> Customer:
    async with stack.sessions() as session:
        query = select(Customer).where(Customer.retailer_id == retailer_id)
        return (await session.exec(query)).one()


async def suppressed(stack: Stack, retailer_id: str) -> set[tuple[str, str]]:
    async with stack.sessions() as session:
        rows = await session.exec(select(Suppression).where(Suppression.retailer_id == retailer_id))
        return {(s.channel, s.address) for s in rows}


def path_of(url: str) -> str:
    return url.removeprefix(SETTINGS.public_base_url)


def test_the_url_carries_a_token_for_exactly_that_target() -> None:
    url = unsubscribe_url("acme", 7, "email", settings=SETTINGS)
    assert url.startswith("http://localhost:8000/v1/unsubscribe/")
    target = verify_token(url.rsplit("/", 1)[1], settings=SETTINGS)
    assert (target.retailer_id, target.customer_id, target.channel) == ("acme", 7, "email")


def test_links_already_sent_keep_working_through_a_rotation() -> None:
    before = Settings(unsubscribe_secret="first-secret")  # type: ignore[arg-type]
    rotated = Settings(
        unsubscribe_secret="second-secret",  # type: ignore[arg-type]
        unsubscribe_old_secrets=["first-secret"],  # type: ignore[list-item]
    )
    dropped = Settings(unsubscribe_secret="second-secret")  # type: ignore[arg-type]
    sent = make_token("acme", 7, "email", settings=before)

    assert verify_token(sent, settings=rotated).customer_id == 7
    assert verify_token(make_token("acme", 8, "sms", settings=rotated), settings=dropped).channel
    with pytest.raises(InvalidToken):
        verify_token(sent, settings=dropped)


def test_the_admin_token_plays_no_part_in_the_links() -> None:
    one = Settings(admin_token="a" * 20, unsubscribe_secret="s")  # type: ignore[arg-type]
    other = Settings(admin_token="b" * 20, unsubscribe_secret="s")  # type: ignore[arg-type]
    assert (
        verify_token(make_token("acme", 7, "email", settings=one), settings=other).customer_id == 7
    )


async def test_one_click_unsubscribes_and_stops_an_email_only_journey(
    stack: Stack, retailer: RetailerClient
) -> None:
    customer = await start_cart(retailer, "c1", {"email": True})
    assert customer.id is not None
    url = unsubscribe_url(retailer.id, customer.id, "email", settings=SETTINGS)

    response = await stack.api.post(path_of(url), data=ONE_CLICK)

    assert response.status_code == 200, response.text
    assert "Unsubscribed" in response.text
    assert not (await shopper(stack, retailer.id)).consent_email
    assert await suppressed(stack, retailer.id) == {("email", SHOPPER["email"])}
    assert (await retailer.result("c1")).stage == "opted_out"

    again = await stack.api.post(path_of(url), data=ONE_CLICK)  # a second click is harmless
    assert again.status_code == 200
    async with stack.sessions() as session:
        changes = list(await session.exec(select(ConsentChange)))
    assert [(c.channel, c.granted, c.source) for c in changes][-1:] == [
        ("email", False, "unsubscribe_link")
    ]
    assert sum(1 for c in changes if c.source == "unsubscribe_link") == 1


async def test_texts_still_allowed_keep_the_journey_going(
    stack: Stack, retailer: RetailerClient
) -> None:
    customer = await start_cart(retailer, "c1", {"email": True, "sms": True})
    assert customer.id is not None
    url = unsubscribe_url(retailer.id, customer.id, "email", settings=SETTINGS)

    response = await stack.api.post(path_of(url), data=ONE_CLICK)

    assert response.status_code == 200, response.text
    after = await shopper(stack, retailer.id)
    assert not after.consent_email and after.consent_sms
    assert "opted_out" not in await signals(retailer, "c1")


async def test_the_page_only_confirms(stack: Stack, retailer: RetailerClient) -> None:
    customer = await start_cart(retailer, "c1", {"email": True})
    assert customer.id is not None
    url = unsubscribe_url(retailer.id, customer.id, "email", settings=SETTINGS)

    page = await stack.api.get(path_of(url))

    assert page.status_code == 200, page.text
    assert "<form method='post'>" in page.text and "One-Click" in page.text
    assert (await shopper(stack, retailer.id)).consent_email  # a link scanner changes nothing
    assert await suppressed(stack, retailer.id) == set()


@pytest.mark.parametrize("forgery", ["tampered", "other customer", "other secret", "garbage"])
async def test_a_forged_link_is_refused_and_changes_nothing(
    stack: Stack, retailer: RetailerClient, forgery: str
) -> None:
    customer = await start_cart(retailer, "c1", {"email": True})
    assert customer.id is not None
    mine = make_token(retailer.id, customer.id, "email", settings=SETTINGS)
    if forgery == "tampered":  # one character of the signature changed
        payload, mac = mine.split(".")
        token = f"{payload}.{('A' if mac[0] != 'A' else 'B') + mac[1:]}"
    elif forgery == "other customer":  # someone's genuine link, rewritten to name this shopper
        theirs = make_token(retailer.id, customer.id + 1, "email", settings=SETTINGS)
        token = f"{mine.split('.')[0]}.{theirs.split('.')[1]}"
    elif forgery == "other secret":
        other = Settings(unsubscribe_secret="someone-elses-server")  # type: ignore[arg-type]
        token = make_token(retailer.id, customer.id, "email", settings=other)
    else:
        token = "not-a-token"

    for method in ("GET", "POST"):
        response = await stack.api.request(method, f"/v1/unsubscribe/{token}", data=ONE_CLICK)
        assert response.status_code == 403, response.text
    assert (await shopper(stack, retailer.id)).consent_email
    assert await suppressed(stack, retailer.id) == set()


async def test_a_genuine_link_for_an_unknown_customer_is_a_404(
    stack: Stack, retailer: RetailerClient
) -> None:
    token = make_token(retailer.id, 999_999, "email", settings=SETTINGS)
    response = await stack.api.post(f"/v1/unsubscribe/{token}", data=ONE_CLICK)
    assert response.status_code == 404, response.text
