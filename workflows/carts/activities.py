"""The activities the cart workflow calls: their names and signatures, nothing else.

The workflow refers to these stubs instead of importing the implementations (``activities/``
pulls in the database, the providers' SDKs and settings, none of which belong in the sandbox).
The worker registers the real methods under the same names; ``tests/replay`` and
``tests/platform/test_activity_contracts.py`` check that each stub matches its implementation.
"""

from temporalio import activity

from workflows.carts.types import (
    CartSnapshot,
    OfferNudgeInput,
    OfferNudgeResult,
    RecordCallInput,
    RefreshCartInput,
    SendStepInput,
    SendStepResult,
)


@activity.defn(name="refresh_cart")
async def refresh_cart(input: RefreshCartInput) -> CartSnapshot:
    """Re-reads the cart the API keeps (``activities.carts.store``)."""
    raise NotImplementedError


@activity.defn(name="send_step")
async def send_step(input: SendStepInput) -> SendStepResult:
    """Checks every guard, then sends the step once (``activities.messaging.sends``)."""
    raise NotImplementedError


@activity.defn(name="check_step")
async def check_step(input: SendStepInput) -> SendStepResult:
    """Checks a step's guards without sending (``activities.messaging.sends``)."""
    raise NotImplementedError


@activity.defn(name="record_call")
async def record_call(input: RecordCallInput) -> SendStepResult:
    """Records the outcome of an agent's call as the step's message."""
    raise NotImplementedError


@activity.defn(name="offer_nudge")
async def offer_nudge(input: OfferNudgeInput) -> OfferNudgeResult:
    """Writes the on-site nudge for the storefront and pushes the retailer's webhook."""
    raise NotImplementedError
