"""The Temporal worker: cart workflows and their activities on one task queue."""

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.cart_store import CartStoreActivities
from activities.feedback_cases import CaseActivities
from activities.messaging import MessagingActivities
from activities.task_inbox import TaskInboxActivities
from winback.channels.router import Adapters
from winback.db import SessionFactory
from workflows.cart_recovery import CartRecoveryWorkflow
from workflows.feedback_case import FeedbackCaseWorkflow
from workflows.promoter_thanks import PromoterThanksWorkflow

WORKFLOWS = [CartRecoveryWorkflow, FeedbackCaseWorkflow, PromoterThanksWorkflow]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    sessions: SessionFactory,
    adapters: Adapters,
    http: httpx.AsyncClient | None = None,
) -> Worker:
    """``adapters``: a ``RetailerChannelRouter`` in production (each retailer's own providers),
    or a plain ``{channel: adapter}`` dict in tests."""
    store = CartStoreActivities(sessions)
    messaging = MessagingActivities(sessions, adapters, http)
    inbox = TaskInboxActivities(sessions, adapters)
    cases = CaseActivities(sessions, adapters)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
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
        ],
    )
