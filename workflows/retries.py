"""Retry policies the workflows share. Business failures are non-retryable ApplicationErrors
whatever the policy says; these only shape retries of what may succeed later."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from workflows.carts.types import SEND_ATTEMPTS
from workflows.errors import ErrorType

# Reading and writing our own database has no side effects: retry for as long as it takes.
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

# A local activity holds its workflow task open while it runs (and the answer to an Update
# accepted in it): our own database's writes only, briefly.
LOCAL_DATABASE_TIMEOUT = timedelta(seconds=10)

# Telling a person (an agent, a case owner, a customer) goes through a provider: back off, give up
# after as many attempts as a shopper's message (the failure is then recorded on the message).
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=SEND_ATTEMPTS,
    non_retryable_error_types=[
        ErrorType.PROVIDER_REJECTED,
        ErrorType.UNKNOWN_TASK,
        ErrorType.UNKNOWN_CASE,
    ],
)

# The activities that notify heartbeat every second: a killed worker's attempt is retried after
# this, not after its whole start-to-close timeout (timeouts are not part of the replayed
# commands, so running workflows pick this up safely; tests/replay checks it).
NOTIFY_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
