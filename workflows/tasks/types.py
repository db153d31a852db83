"""Data types of human tasks: what a workflow asks a person to do, and what comes back.

Standard library only: imported inside the workflow sandbox.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class TaskSpec:
    """A step that waits for a person."""

    kind: str
    title: str
    allowed_outcomes: list[str]
    sla_seconds: int
    priority: int = 1
    queue: str | None = None  # None: routed by skills
    skills: list[str] = field(default_factory=list)  # extra skills, on top of the routed ones
    cart_id: str | None = None
    case_id: str | None = None
    remind_before_seconds: int | None = None
    max_escalations: int = 3
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskClaim:
    task_id: str
    agent_id: str


@dataclass
class TaskRelease:
    task_id: str
    agent_id: str


@dataclass
class TaskReassign:
    task_id: str
    to_agent_id: str
    by_agent_id: str  # a supervisor (checked by the API)


@dataclass
class TaskCompletion:
    task_id: str
    agent_id: str
    outcome: str
    notes: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskView:
    task_id: str
    kind: str
    status: str
    queue: str
    priority: int
    due_at: datetime
    claimed_by: str | None = None
    outcome: str | None = None
    escalation_level: int = 0
    version: int = 0  # bumped on every accepted change, so the inbox row follows in order
    completed_at: datetime | None = None
    # The workflow writes this state into the inbox row itself, in the workflow task that
    # answers the Update, so whoever sent the Update need not (a cart's completed call).
    written_by_workflow: bool = False


# --- activity inputs and outputs -------------------------------------------------------------


@dataclass
class OpenTaskInput:
    task_id: str
    workflow_id: str
    retailer_id: str
    spec: TaskSpec
    due_at: datetime
    at: datetime


@dataclass
class OpenTaskResult:
    queue: str
    skills: list[str]


@dataclass
class TaskChange:
    """Mirrors an accepted change into the inbox row."""

    task_id: str
    status: str
    version: int
    at: datetime
    claimed_by: str | None = None
    outcome: str | None = None
    notes: str | None = None


@dataclass
class EscalateTaskInput:
    task_id: str
    retailer_id: str
    level: int
    next_due_at: datetime
    at: datetime


@dataclass
class EscalateTaskResult:
    queue: str
    priority: int
    notified: list[str] = field(default_factory=list)


@dataclass
class RemindTaskInput:
    task_id: str
    retailer_id: str
    at: datetime
