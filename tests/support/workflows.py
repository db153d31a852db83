"""Reading workflow times in tests on the time-skipping server."""

from datetime import timedelta


def to_the_minute(value: timedelta) -> timedelta:
    """Workflow times, as far as a test can pin them down.

    A timer starts when the worker completes the task that set it, so on a busy machine each
    firing comes a few hundred milliseconds after its due time; minutes are what the journey
    is planned in."""
    return timedelta(minutes=round(value.total_seconds() / 60))
