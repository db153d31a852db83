"""The Temporal worker: every workflow and activity on one task queue, wired to its dependencies."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.carts.store import CartStoreActivities
from activities.feedback.cases import CaseActivities
from activities.feedback.surveys import SurveyActivities
from activities.messaging.sends import MessagingActivities
from activities.tasks.inbox import TaskInboxActivities
from winback.composition.worker_tuning import worker_options
from winback.messaging.channels.router import Adapters
from winback.platform.db import SessionFactory
from winback.platform.logs import LogContextInterceptor
from winback.platform.settings import Settings
from workflows.carts.cart_recovery import (
    CartRecoveryWorkflow,
    CartRecoveryWorkflowV1,
    CartRecoveryWorkflowV2,
    CartRecoveryWorkflowV3,
)
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.promoter_thanks import PromoterThanksWorkflow
from workflows.feedback.survey import SurveyWorkflow

WORKFLOWS = [
    CartRecoveryWorkflow,
    CartRecoveryWorkflowV3,
    CartRecoveryWorkflowV2,
    CartRecoveryWorkflowV1,
    FeedbackCaseWorkflow,
    PromoterThanksWorkflow,
    SurveyWorkflow,
]


def build_worker(
    client: Client,
    *,
    settings: Settings,
    sessions: SessionFactory,
    adapters: Adapters,
    http: httpx.AsyncClient | None = None,
) -> Worker:
    """``adapters``: a ``RetailerChannelRouter`` in production (each retailer's own providers),
    or a plain ``{channel: adapter}`` dict in tests."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activity_implementations(
            settings=settings, sessions=sessions, adapters=adapters, http=http
        ),
        # Log lines from activities carry their retailer and cart (tracing, when on, comes
        # with the client's interceptors).
        interceptors=[LogContextInterceptor()],
        **worker_options(settings),
    )


def activity_implementations(
    *,
    settings: Settings,
    sessions: SessionFactory,
    adapters: Adapters,
    http: httpx.AsyncClient | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the workflows call (``workflows/*/activities.py`` declares them), bound
    to its dependencies."""
    store = CartStoreActivities(sessions)
    messaging = MessagingActivities(sessions, adapters, settings, http)
    grace = timedelta(seconds=settings.send_event_grace_seconds)
    inbox = TaskInboxActivities(sessions, adapters, grace)
    cases = CaseActivities(sessions, adapters, settings, grace)
    surveys = SurveyActivities(sessions, adapters, settings)
    return [
        store.refresh_cart,
        messaging.send_step,
        messaging.check_step,
        messaging.record_call,
        messaging.offer_nudge,
        inbox.open_task,
        inbox.close_task,
        inbox.escalate_task,
        inbox.remind_task,
        cases.alert_owner,
        cases.record_case,
        cases.send_follow_up_survey,
        cases.thank_promoter,
        surveys.send_survey,
    ]
