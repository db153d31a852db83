"""The inbox of human tasks. The workflow that waits for a task is its source of truth; this
row is the listing agents browse, updated only after the workflow has accepted a change."""

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from winback.platform.columns import json_column, utc_column
from workflows.vocabulary import TaskStatus


class TaskBase(SQLModel):
    kind: str = Field(max_length=40)
    title: str = Field(max_length=300)
    queue: str = Field(max_length=60, index=True)
    skills: list[str] = json_column(list)
    priority: int = 1
    status: str = Field(default=TaskStatus.OPEN, max_length=20, index=True)
    claimed_by: str | None = Field(default=None, max_length=60, index=True)
    allowed_outcomes: list[str] = json_column(list)
    outcome: str | None = Field(default=None, max_length=40)
    notes: str | None = None
    cart_id: str | None = Field(default=None, max_length=128, index=True)
    case_id: str | None = Field(default=None, max_length=128, index=True)
    details: dict[str, Any] = json_column()
    escalation_level: int = 0


class HumanTask(TaskBase, table=True):
    id: str = Field(primary_key=True, max_length=300)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    workflow_id: str = Field(max_length=300, index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    due_at: datetime = utc_column(nullable=False, index=True)
    created_at: datetime = utc_column(nullable=False, default_now=True)
    completed_at: datetime | None = utc_column()
    version: int = 0  # the workflow's version of the task this row shows


class TaskPublic(TaskBase):
    id: str
    workflow_id: str
    due_at: datetime
    created_at: datetime
    completed_at: datetime | None
    overdue: bool = False


class Escalation(SQLModel, table=True):
    """Every escalation of an overdue task (a cart's call or a case's step), for the record."""

    id: int | None = Field(default=None, primary_key=True)
    retailer_id: str = Field(foreign_key="retailer.id", index=True)
    task_id: str = Field(max_length=300, index=True)
    case_id: int | None = Field(default=None, index=True)
    cart_id: str | None = Field(default=None, max_length=128)
    level: int
    notified: str | None = Field(default=None, max_length=320)
    queue: str = Field(max_length=60)
    at: datetime = utc_column(nullable=False)
    details: dict[str, Any] = json_column()
