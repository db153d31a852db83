"""SurveyWorkflow: one survey Winback asks itself (``POST /v1/surveys``), sent once.

Like the promoter's thank-you, a workflow for one message gives the send the retries and the
idempotency of every other message, with ID ``survey-<retailer>-<invite>``. The answer does not
come back here: the page, the SMS webhook and the call's gather webhook record it on the invite
and go through the same path as any answer.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.carts.types import SEND_ATTEMPTS
from workflows.errors import ErrorType
from workflows.feedback import activities as case_activities
from workflows.feedback.types import SurveyInput


@workflow.defn
class SurveyWorkflow:
    @workflow.run
    async def run(self, input: SurveyInput) -> str | None:
        input.at = workflow.now()
        channel: str | None = await workflow.execute_activity(
            case_activities.send_survey,
            input,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(minutes=5),
                maximum_attempts=SEND_ATTEMPTS,
                non_retryable_error_types=[ErrorType.PROVIDER_REJECTED, ErrorType.UNKNOWN_SURVEY],
            ),
            summary="send the survey",
        )
        return channel
