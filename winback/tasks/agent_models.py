"""Contact-centre agents and the queues tasks are routed to, per retailer."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column

SKILL_PATTERN = re.compile(r"^(category|lang):[a-z0-9_\-]{1,60}$")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,59}$"
DEFAULT_QUEUE = "default"


def check_skills(skills: list[str]) -> list[str]:
    for skill in skills:
        if not SKILL_PATTERN.fullmatch(skill):
            raise ValueError(
                f"{skill!r} is not a skill: use 'category:<product category>' or 'lang:<code>'"
            )
    return sorted(set(skills))


class QueueBase(SQLModel):
    skills: list[str] = json_column(list)
    supervisor_id: str | None = Field(default=None, max_length=60)
    escalate_to: str | None = Field(
        default=None, max_length=60, description="Queue an overdue task moves to."
    )

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return check_skills(value)


Skill = Annotated[str, Field(max_length=80)]
QueueName = Annotated[str, Field(max_length=60)]


class QueueCreate(QueueBase):
    skills: list[Skill] = Field(default_factory=list, max_length=50)


class Queue(QueueBase, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    name: str = Field(max_length=60)


class QueuePublic(QueueBase):
    name: str


class AgentBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    skills: list[str] = json_column(list)
    queues: list[str] = json_column(list)
    is_supervisor: bool = False

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return check_skills(value)


class AgentCreate(AgentBase):
    id: str = Field(min_length=1, max_length=60, schema_extra={"pattern": NAME_PATTERN})
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    queues: list[QueueName] = Field(default_factory=lambda: [DEFAULT_QUEUE], max_length=50)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError("lowercase letters, digits, '-' and '_' only")
        return value


class Agent(AgentBase, table=True):
    __table_args__ = (UniqueConstraint("retailer_id", "agent_id"),)

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    agent_id: str = Field(max_length=60)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = utc_column(nullable=False, default_now=True)


class AgentPublic(AgentBase):
    id: str
    created_at: datetime
