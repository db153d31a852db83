"""Agents of the contact centre: created by the retailer; each gets its own token once."""

import re
import secrets

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from sqlmodel import col, select

from api.deps import AgentDep, RetailerDep, SessionDep, hash_key
from winback.tasks.agent_models import NAME_PATTERN, Agent, AgentCreate, AgentPublic

router = APIRouter(prefix="/v1/agents", tags=["agents"])


class AgentCreated(AgentPublic):
    token: str = Field(description="Shown once. The agent sends it as the `X-Agent-Token` header.")


def agent_public(agent: Agent) -> AgentPublic:
    return AgentPublic(**agent.model_dump(exclude={"id", "agent_id"}), id=agent.agent_id)


@router.post("", response_model=AgentCreated, status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentCreate, retailer: RetailerDep, session: SessionDep
) -> AgentCreated:
    """Adds an agent (skills such as `category:shoes` or `lang:es`, queues, supervisor or not)
    and returns its token, shown only here."""
    bad = [
        {"loc": ("body", "queues", i), "msg": "not a queue name", "type": "value_error"}
        for i, name in enumerate(body.queues)
        if not re.fullmatch(NAME_PATTERN, name)
    ]
    if bad:
        raise RequestValidationError(bad)
    taken = select(Agent.id).where(Agent.retailer_id == retailer.id, Agent.agent_id == body.id)
    if (await session.exec(taken)).first() is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"agent {body.id!r} already exists")
    token = f"wba_{secrets.token_urlsafe(32)}"
    agent = Agent.model_validate(
        body.model_dump(exclude={"id"}),
        update={"retailer_id": retailer.id, "agent_id": body.id, "token_hash": hash_key(token)},
    )
    session.add(agent)
    await session.flush()
    return AgentCreated(**agent_public(agent).model_dump(), token=token)


@router.get("", response_model=list[AgentPublic])
async def list_agents(retailer: RetailerDep, session: SessionDep) -> list[AgentPublic]:
    """The retailer's agents, by id."""
    rows = await session.exec(
        select(Agent).where(Agent.retailer_id == retailer.id).order_by(col(Agent.agent_id))
    )
    return [agent_public(a) for a in rows]


@router.get("/me", response_model=AgentPublic)
async def read_me(agent: AgentDep) -> AgentPublic:
    """The agent the `X-Agent-Token` belongs to."""
    return agent_public(agent)
