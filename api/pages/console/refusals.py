"""Why a change to a task did not happen, in words an agent can act on.

The workflow refuses a wrong change in its Update validator; the JSON API answers that with a
status code (``api/errors.py``), the console with a sentence next to the task.
"""

from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from winback.tasks.commands import TaskNoLongerOpen

REASONS = {
    "TaskClaimed": "Someone else has already claimed this task.",
    "TaskClosed": "This task is already finished.",
    "NotTaskHolder": "You do not hold this task: claim it first.",
    "TaskNotFound": "The workflow no longer has this task.",
    "InvalidOutcome": "The workflow does not accept that outcome.",
    "InvalidTaskData": "The workflow needs more about this outcome.",
}

# What the console catches around a task command; anything else is a bug and a 500.
REFUSALS = (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    TaskNoLongerOpen,
    RPCError,
)


def in_words(exc: BaseException) -> str:
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            lead = REASONS.get(cause.type or "", "The workflow refused this change.")
            return f"{lead} ({cause.message})"
        return "The workflow could not apply this change. Try again in a moment."
    if isinstance(exc, TaskNoLongerOpen):
        return "This task is no longer open: its workflow has finished."
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return "The workflow did not answer in time. Try again."
    if isinstance(exc, RPCError):
        return "The workflow service is unavailable right now. Try again in a moment."
    return "Something went wrong. Try again."
