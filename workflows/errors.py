"""Every business failure Winback knows, by the ``type`` of its ``ApplicationError``.

One catalogue for the three places that must agree: the code that raises (workflows' validators
and activities), the retry policies that must not retry it, and the HTTP error map in
``api/errors.py``. Standard library and temporalio only: workflows import it in the sandbox.
"""

from enum import StrEnum

from temporalio.exceptions import ApplicationError


class ErrorType(StrEnum):
    # An agent's change refused by the workflow's Update validator (never reaches history).
    TASK_NOT_FOUND = "TaskNotFound"
    TASK_CLOSED = "TaskClosed"
    TASK_CLAIMED = "TaskClaimed"
    NOT_TASK_HOLDER = "NotTaskHolder"
    INVALID_OUTCOME = "InvalidOutcome"
    INVALID_TASK_DATA = "InvalidTaskData"
    # Activities: rows that vanished, templates that cannot render, providers that said no.
    UNKNOWN_CART = "UnknownCart"
    UNKNOWN_TASK = "UnknownTask"
    UNKNOWN_CASE = "UnknownCase"
    UNKNOWN_SURVEY = "UnknownSurvey"
    TEMPLATE_ERROR = "TemplateError"
    PROVIDER_REJECTED = "ProviderRejected"  # a 4xx that will never succeed
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"  # retryable, until the last attempt
    SEND_UNSETTLED = "SendUnsettled"  # retryable: a crashed send not yet known sent or not
    WEBHOOK_FAILED = "WebhookFailed"  # the retailer's nudge webhook answered an error
    QUIET_HOURS = "QuietHours"  # not now: the workflow sleeps until the quiet hours end


def business_error(message: str, type: ErrorType) -> ApplicationError:
    """A failure no retry can fix."""
    return ApplicationError(message, type=type, non_retryable=True)
