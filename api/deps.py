"""Dependencies as ``Annotated`` aliases: the session, the Temporal client, the cart relay, the
caller."""

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from winback.carts.event_writer import EventWriter
from winback.carts.relay import CartRelay
from winback.platform.db import SessionFactory
from winback.platform.settings import DEV_ADMIN_TOKEN, Settings
from winback.retailers.lookups import (
    RetailerRef,
    cached_retailer_of_api_key,
    retailer_of_api_key,
)
from winback.retailers.models import ApiKey, Retailer
from winback.tasks.agent_models import Agent


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app``), never a global."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> SessionFactory:
    factory: SessionFactory = request.app.state.sessions
    return factory


async def get_session(
    factory: Annotated[SessionFactory, Depends(get_session_factory)],
) -> AsyncIterator[AsyncSession]:
    """One session per request; committed if the route returns, rolled back if it raises.

    ``scope="function"`` (below) runs the commit when the route returns, before the response
    is sent: a 2xx means committed, a failed commit is an error response, and the caller's next
    request reads what this one wrote."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_temporal_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def get_cart_relay(request: Request) -> CartRelay:
    relay: CartRelay = request.app.state.cart_relay
    return relay


async def get_event_writer(request: Request) -> EventWriter:
    writer: EventWriter = request.app.state.event_writer
    return writer


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]
TemporalClientDep = Annotated[Client, Depends(get_temporal_client)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CartRelayDep = Annotated[CartRelay, Depends(get_cart_relay)]
EventWriterDep = Annotated[EventWriter, Depends(get_event_writer)]

_api_key = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False, description="A retailer's API key."
)
_agent_token = APIKeyHeader(
    name="X-Agent-Token",
    scheme_name="AgentToken",
    auto_error=False,
    description="An agent's token, given once when the retailer created the agent.",
)
_admin_token = APIKeyHeader(
    name="X-Admin-Token",
    scheme_name="AdminToken",
    auto_error=False,
    description="The operator's admin token.",
)


async def _key_and_retailer(session: AsyncSession, key: str) -> tuple[ApiKey, Retailer]:
    row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))).first()
    retailer = await session.get(Retailer, row.retailer_id) if row else None
    if row is None or retailer is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
    return row, retailer


async def _retailer_of_key(session: AsyncSession, key: str) -> Retailer:
    """The retailer of one of its full keys; a business unit's key opens no such route."""
    row, retailer = await _key_and_retailer(session, key)
    if row.business_unit is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this API key belongs to business unit {row.business_unit!r}: it reads only "
            "that unit's feedback report (GET /v1/reports/feedback) and dashboard",
        )
    return retailer


@dataclass(frozen=True)
class ReportReader:
    """Who reads a report: the retailer, and the one business unit a unit's key is kept to
    (``None``: the retailer's own key, every unit)."""

    retailer: Retailer
    business_unit: str | None

    def unit(self, requested: str | None) -> str | None:
        """The unit to report on: a unit's key sees its own whatever is asked; asking for
        another is refused (403) rather than silently answered with its own."""
        if self.business_unit is None:
            return requested
        if requested is not None and requested != self.business_unit:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this API key reads only business unit {self.business_unit!r}",
            )
        return self.business_unit

    def require_whole_retailer(self) -> None:
        """Carts belong to no business unit: only the retailer's own key reads them."""
        if self.business_unit is not None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this API key belongs to business unit {self.business_unit!r}; carts belong "
                "to no unit, so it reads only the feedback report",
            )


async def key_reader(session: AsyncSession, key: str) -> tuple[ApiKey, ReportReader]:
    """The key's row and what it may read (401 for an unknown key)."""
    row, retailer = await _key_and_retailer(session, key)
    return row, ReportReader(retailer, row.business_unit)


async def agent_of_token(session: AsyncSession, token: str) -> Agent:
    agent = (await session.exec(select(Agent).where(Agent.token_hash == hash_key(token)))).first()
    if agent is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown agent token")
    return agent


async def get_retailer(
    session: SessionDep, key: Annotated[str | None, Security(_api_key)]
) -> Retailer:
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    return await _retailer_of_key(session, key)


async def get_report_reader(
    session: SessionDep, key: Annotated[str | None, Security(_api_key)]
) -> ReportReader:
    """The retailer behind any of its keys, a business unit's included, and that unit."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    _, reader = await key_reader(session, key)
    return reader


async def get_agent(
    session: SessionDep, token: Annotated[str | None, Security(_agent_token)]
) -> Agent:
    """The agent the token belongs to; everything it does is scoped to the agent's retailer."""
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-Agent-Token header")
    return await agent_of_token(session, token)


async def get_agent_token(token: Annotated[str | None, Security(_agent_token)]) -> str:
    """The agent's token itself, for routes that look the agent up together with what they
    read anyway (an agent's task: one query for both, ``winback.tasks.commands``)."""
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-Agent-Token header")
    return token


async def get_caller_retailer(
    session: SessionDep,
    token: Annotated[str | None, Security(_agent_token)],
    key: Annotated[str | None, Security(_api_key)],
) -> Retailer:
    """The retailer behind an agent's token or the retailer's own API key (either will do;
    if both are sent they must belong to the same retailer)."""
    if not token and not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing X-Agent-Token (or X-API-Key) header"
        )
    retailer = await _retailer_of_key(session, key) if key else None
    if token:
        agent = await agent_of_token(session, token)
        if retailer is not None and retailer.id != agent.retailer_id:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "X-Agent-Token and X-API-Key name other retailers"
            )
        retailer = retailer or await session.get(Retailer, agent.retailer_id)
    assert retailer is not None  # an agent's retailer row is kept by its foreign key
    return retailer


def require_admin(
    settings: SettingsDep, token: Annotated[str | None, Security(_admin_token)]
) -> None:
    expected = settings.admin_token.get_secret_value()
    if not token or not hmac.compare_digest(token, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-Admin-Token")
    if expected == DEV_ADMIN_TOKEN and not settings.embedded_dev:
        # The documented default is public knowledge: only the embedded stack may use it.
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the default admin token works only in `winback dev`; set WINBACK_ADMIN_TOKEN",
        )


async def get_event_retailer(
    factory: SessionFactoryDep, key: Annotated[str | None, Security(_api_key)]
) -> RetailerRef:
    """The API key's retailer for the ingestion routes: from the per-process cache
    (``winback.retailers.lookups``: seconds old at most, cleared on change), on a miss read in a
    short session of its own, so that the request's transaction starts with its write. Routes
    that change the retailer use ``RetailerDep`` (the row itself) instead."""
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    cached = cached_retailer_of_api_key(key)
    if cached is not None:  # the usual case: no session made and closed for nothing
        return cached
    async with factory() as session:
        ref = await retailer_of_api_key(session, key)
        if ref is None:  # unknown (401), or a business unit's key (403): the full check says which
            retailer = await _retailer_of_key(session, key)
            ref = RetailerRef(id=retailer.id, name=retailer.name, country=retailer.country)
    return ref


RetailerDep = Annotated[Retailer, Depends(get_retailer)]
ReportReaderDep = Annotated[ReportReader, Depends(get_report_reader)]
EventRetailerDep = Annotated[RetailerRef, Depends(get_event_retailer)]
AgentDep = Annotated[Agent, Depends(get_agent)]
AgentTokenDep = Annotated[str, Depends(get_agent_token)]
CallerRetailerDep = Annotated[Retailer, Depends(get_caller_retailer)]
AdminDep = Annotated[None, Depends(require_admin)]
