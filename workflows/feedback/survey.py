"""SurveyWorkflow: one survey Winback asks itself (``POST /v1/surveys``), sent once.

Like the promoter's thank-you, a workflow for one message gives the send the retries and the
idempotency of every other message, with ID ``survey-<retailer>-<invite>``. The answer does not
come back here: the page, the SMS webhook and the call's gather webhook record it on the invite
and go through the same path as any answer.

A text or a call never goes out in the retailer's quiet hours (in the customer's zone): the send
refuses with ``QuietHours`` and the time they end, and the workflow sleeps until then (one
timer) and sends. Histories from before have no such refusal, so they replay unchanged.
"""

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.carts.types import SEND_ATTEMPTS
from workflows.errors import ErrorType
from workflows.feedback import activities as case_activities
from workflows.feedback.types import SurveyInput


@workflow.defn
class SurveyWorkflow:
    @workflow.run
    async def run(self, input: SurveyInput) -> str | None:
        input.wait_out_quiet_hours = True
        while True:
            input.at = workflow.now()
            try:
                return await self._send(input)
            except ActivityError as err:
                until = _quiet_until(err)
                if until is None:
                    raise
            await workflow.sleep(until - workflow.now(), summary="quiet hours")

    async def _send(self, input: SurveyInput) -> str | None:
        channel: str | None = await workflow.execute_activity(
            case_activities.send_survey,
            input,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(minutes=5),
                maximum_attempts=SEND_ATTEMPTS,
                non_retryable_error_types=[
                    ErrorType.PROVIDER_REJECTED,
                    ErrorType.UNKNOWN_SURVEY,
                    ErrorType.QUIET_HOURS,
                ],
            ),
            summary="send the survey",
        )
        return channel


def _quiet_until(err: ActivityError) -> datetime | None:
    """When the quiet hours that refused the send end; None for any other failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.QUIET_HOURS:
        return datetime.fromisoformat(str(cause.details[0]))
    return None
