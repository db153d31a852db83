"""The activities the feedback workflows call: names and signatures only (implemented in
``activities.feedback.cases``; see ``workflows/carts/activities.py`` for why stubs)."""

from temporalio import activity

from workflows.feedback.types import (
    AlertOwnerInput,
    CaseChange,
    FollowUpSurveyInput,
    SurveyInput,
    ThanksInput,
)


@activity.defn(name="alert_owner")
async def alert_owner(input: AlertOwnerInput) -> list[str]:
    """Notifies the case's owner at once; returns the channels used."""
    raise NotImplementedError


@activity.defn(name="record_case")
async def record_case(change: CaseChange) -> None:
    """Mirrors the case's stage and outcome on its row."""
    raise NotImplementedError


@activity.defn(name="send_follow_up_survey")
async def send_follow_up_survey(input: FollowUpSurveyInput) -> str | None:
    """Sends the follow-up survey once; returns the channel used, if any."""
    raise NotImplementedError


@activity.defn(name="thank_promoter")
async def thank_promoter(input: ThanksInput) -> str | None:
    """Sends a promoter's thank-you and review request once."""
    raise NotImplementedError


@activity.defn(name="send_survey")
async def send_survey(input: SurveyInput) -> str | None:
    """Sends a survey invite once (email, SMS or an IVR call); returns the channel, if any."""
    raise NotImplementedError
