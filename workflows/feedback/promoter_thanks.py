"""PromoterThanksWorkflow: a promoter gets a thank-you and a review request, once.

A workflow for one message is cheap (a start and an activity) and gives the send the same
retries and idempotency as every other message, with ID ``thanks-<retailer>-<answer>``.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.carts.types import SEND_ATTEMPTS
from workflows.feedback import activities as case_activities
from workflows.feedback.types import ThanksInput
from workflows.retries import NOTIFY_HEARTBEAT_TIMEOUT


@workflow.defn
class PromoterThanksWorkflow:
    @workflow.run
    async def run(self, input: ThanksInput) -> str | None:
        input.at = workflow.now()
        channel: str | None = await workflow.execute_activity(
            case_activities.thank_promoter,
            input,
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=NOTIFY_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(minutes=5),
                maximum_attempts=SEND_ATTEMPTS,
                non_retryable_error_types=["ProviderRejected"],
            ),
            summary="thank the promoter",
        )
        return channel
