"""Side effects of feedback cases: alerting the owner, the case's row, the follow-up survey."""

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.feedback.surveys import send_invite
from activities.messaging.notify import Recipient, notify
from activities.messaging.sends import heartbeating
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.feedback.surveys import create_invite
from winback.messaging.channels.router import Adapters
from winback.messaging.reconcile import EVENT_GRACE
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory, session_scope
from winback.platform.settings import Settings, get_settings
from winback.retailers.models import Retailer
from workflows.errors import ErrorType
from workflows.feedback.types import AlertOwnerInput, CaseChange, FollowUpSurveyInput, ThanksInput


class CaseActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        adapters: Adapters,
        settings: Settings | None = None,
        event_grace: timedelta = EVENT_GRACE,
    ) -> None:
        self._sessions = sessions
        self._adapters = adapters
        self._settings = settings or get_settings()  # the survey links' base URL and secret
        self._event_grace = event_grace  # how long a crashed email waits for SendGrid's event

    @activity.defn
    async def alert_owner(self, input: AlertOwnerInput) -> list[str]:
        """Emails the case's owner at once; a hot case is also texted."""
        async with heartbeating():  # a killed worker's attempt is retried within seconds
            return await self._alert_owner(input)

    async def _alert_owner(self, input: AlertOwnerInput) -> list[str]:
        owner = Recipient(input.owner.name, input.owner.email, input.owner.phone)
        subject = f"[{input.severity.upper()}] New feedback case #{input.case_id}"
        body = f"{input.summary}\n\nCase {input.workflow_id} is open and waits for a contact."
        key = f"{input.workflow_id}/{input.key}"
        sent = []
        if owner.email:
            await notify(
                self._sessions,
                self._adapters,
                input.retailer_id,
                owner,
                "email",
                f"{key}-email",
                subject,
                body,
                input.at,
                event_grace=self._event_grace,
            )
            sent.append("email")
        if owner.phone and (input.severity == "hot" or not owner.email):
            await notify(
                self._sessions,
                self._adapters,
                input.retailer_id,
                owner,
                "sms",
                f"{key}-sms",
                subject,
                f"{subject}: {input.summary}",
                input.at,
                event_grace=self._event_grace,
            )
            sent.append("sms")
        return sent

    @activity.defn
    async def record_case(self, change: CaseChange) -> None:
        """Writes the workflow's progress into the case's row (idempotent: it sets values)."""
        async with session_scope(self._sessions) as session:
            case = await _case(session, change.retailer_id, change.case_id)
            for name, value in change.fields.items():
                if name.endswith("_at") and isinstance(value, str):
                    value = datetime.fromisoformat(value)  # an Any-typed payload loses the type
                setattr(case, name, value)
            session.add(case)

    @activity.defn
    async def send_follow_up_survey(self, input: FollowUpSurveyInput) -> str | None:
        """Asks the customer how it went, by email if they agreed to it, else by SMS, with a
        signed link to the hosted survey (an SMS can also be answered with the score). The
        answer comes back linked to the case (``follow_up_of``)."""
        async with heartbeating():  # a killed worker's attempt is retried within seconds
            return await self._send_follow_up_survey(input)

    async def _send_follow_up_survey(self, input: FollowUpSurveyInput) -> str | None:
        key = f"{input.workflow_id}/follow-up-survey"
        async with session_scope(self._sessions) as session:
            case = await _case(session, input.retailer_id, input.case_id)
            customer = await session.get(Customer, case.customer_id) if case.customer_id else None
            retailer = await session.get(Retailer, input.retailer_id)
            if customer is None or retailer is None:
                return None
            channel = next(
                (
                    c
                    for c in ("email", "sms")
                    if customer.address_for(c) and customer.consents_to(c)
                ),
                None,
            )
            if channel is None:
                return None
            invite = await create_invite(
                session,
                retailer_id=input.retailer_id,
                key=key,
                channel=channel,
                scale="nps",
                customer=customer,
                days=self._settings.survey_link_days,
                business_unit=case.business_unit,
                touchpoint="follow_up_survey",
                follow_up_of=case.id,
            )
        return await send_invite(
            self._sessions,
            self._adapters,
            self._settings,
            invite=invite,
            customer=customer,
            retailer=retailer,
            key=key,
            template="follow_up_survey",
            at=input.at,
        )

    @activity.defn
    async def thank_promoter(self, input: ThanksInput) -> str | None:
        """Thanks a promoter and asks for a review, on a channel they agreed to."""
        async with heartbeating():  # a killed worker's attempt is retried within seconds
            return await self._thank_promoter(input)

    async def _thank_promoter(self, input: ThanksInput) -> str | None:
        async with session_scope(self._sessions) as session:
            answer = await session.get(FeedbackAnswer, input.answer_id)
            customer = (
                await session.get(Customer, answer.customer_id)
                if answer is not None and answer.customer_id
                else None
            )
        if customer is None:
            return None
        review = f" Would you share it in a review? {input.review_url}" if input.review_url else ""
        body = f"Thank you for your kind words!{review}"
        for channel in ("email", "sms"):
            if customer.address_for(channel) and customer.consents_to(channel):
                await notify(
                    self._sessions,
                    self._adapters,
                    input.retailer_id,
                    Recipient(customer.name or "", customer.email, customer.phone),
                    channel,
                    f"thanks-{input.retailer_id}-{input.answer_id}",
                    "Thank you!",
                    body,
                    input.at or utcnow(),
                    customer_id=customer.id,
                    template="promoter_thanks",
                    event_grace=self._event_grace,
                )
                return channel
        return None


async def _case(session: AsyncSession, retailer_id: str, case_id: int) -> FeedbackCase:
    case = await session.get(FeedbackCase, case_id)
    if case is None or case.retailer_id != retailer_id:
        raise ApplicationError(
            f"no case {case_id}", type=ErrorType.UNKNOWN_CASE, non_retryable=True
        )
    return case
