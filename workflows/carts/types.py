"""Data types of the cart-recovery workflow: its input, signals, query, activities' I/O.

Plain dataclasses with defaults, so fields can be added without breaking running workflows.
This module is imported inside the workflow sandbox: standard library and workflow types only.
"""

from dataclasses import dataclass, field
from datetime import datetime

from workflows.tasks.types import TaskChange

SEND_ATTEMPTS = 8  # a send retries through this many provider outages, then it is failed


@dataclass
class StepSpec:
    index: int
    channel: str
    delay_seconds: int = 0
    template: str = ""
    min_cart_value: float | None = None
    max_cart_value: float | None = None
    unless: str | None = None  # "email_opened" | "email_clicked"
    discount_code: str | None = None
    discount_pool: str | None = None
    offer: list[str] = field(default_factory=list)
    sla_seconds: int = 0  # agent_call: the call task's SLA; onsite: the callback task's
    remind_before_seconds: int | None = None  # None: a quarter of the SLA; 0: no reminder
    queue: str | None = None  # agent_call / callback: a fixed queue instead of skills routing
    skills: list[str] = field(default_factory=list)


@dataclass
class GuardSpec:
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    cap_max_messages: int | None = None
    cap_window_seconds: int = 86400


@dataclass
class CadenceSpec:
    version: int
    abandon_after_seconds: int
    expire_after_seconds: int
    steps: list[StepSpec]
    guards: GuardSpec = field(default_factory=GuardSpec)


@dataclass
class CartRecoveryInput:
    retailer_id: str
    cart_id: str
    cadence: CadenceSpec
    last_activity_at: datetime
    has_contact: bool = False
    cart_value: float = 0.0
    # A run started only to carry out a callback the shopper asked for after the cart's journey
    # had ended (``winback.carts.workflow_sync``): no cadence, just the agent's task.
    callback_only: bool = False


@dataclass
class OrderPlaced:
    order_id: str
    value: float = 0.0


@dataclass
class OptedOut:
    reason: str = "opt_out"


@dataclass
class NudgeTrigger:
    reason: str  # "idle" | "exit_intent" | "confusion"


@dataclass
class CallbackRequested:
    """The shopper answered the on-site nudge with "call me back"."""


@dataclass
class StepRecord:
    index: int
    channel: str
    outcome: str
    reason: str | None = None
    at: datetime | None = None
    message_id: int | None = None


@dataclass
class CartState:
    stage: str
    cadence_version: int
    has_contact: bool
    nudge_offered: bool
    steps: list[StepRecord] = field(default_factory=list)
    next_step: int | None = None
    next_channel: str | None = None
    next_at: datetime | None = None
    abandoned_at: datetime | None = None


@dataclass
class CartRecoveryResult:
    stage: str
    steps: list[StepRecord] = field(default_factory=list)


# --- activity inputs and outputs -------------------------------------------------------------


@dataclass
class RefreshCartInput:
    retailer_id: str
    cart_id: str
    abandon_if_idle_since: datetime  # mark the cart abandoned if its last activity is older
    at: datetime


@dataclass
class CartSnapshot:
    status: str
    last_activity_at: datetime
    has_contact: bool
    value: float
    abandoned_at: datetime | None = None


@dataclass
class SendStepInput:
    workflow_id: str
    retailer_id: str
    cart_id: str
    step: StepSpec
    guards: GuardSpec
    at: datetime  # workflow time of the send: quiet hours and the cap are judged at it
    key_suffix: str = ""  # a second send for one step (an SMS after unanswered calls)
    # Set while the workflow does not know the abandonment yet (the cadence's first follow-up):
    # the activity judges it first, from the cart's last activity, and backdates it.
    abandon_after_seconds: int | None = None
    abandon_grace_seconds: int = 0


@dataclass
class SendStepResult:
    outcome: str
    reason: str | None = None
    retry_at: datetime | None = None
    message_id: int | None = None
    abandoned_at: datetime | None = None  # when asked to judge it (``abandon_after_seconds``)


@dataclass
class RecordCallInput:
    workflow_id: str
    retailer_id: str
    cart_id: str
    task_id: str
    step_index: int | None
    agent_id: str
    outcome: str
    notes: str
    at: datetime
    # The call task's final state, written to its inbox row in the same transaction (in place
    # of the ``close_task`` activity; ``CartRecoveryV4``).
    close: TaskChange | None = None


@dataclass
class OfferNudgeInput:
    workflow_id: str
    retailer_id: str
    cart_id: str
    step: StepSpec
    reason: str
    at: datetime
    # Offered only if the shopper was active after this (None: the workflow knows they are).
    unless_idle_since: datetime | None = None


@dataclass
class OfferNudgeResult:
    message_id: int | None  # None: not offered, the shopper had left (``unless_idle_since``)
    pushed: bool = False
