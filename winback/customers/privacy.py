"""A customer's data on request: everything Winback holds about a shopper, exported as JSON, or
erased.

Erasure removes the personal data and keeps the rows that the retailer's figures are made of
(a cart's items and value, a message's channel and status, an answer's score), now about nobody:

- the customer: email, phone, name, the retailer's id, locale, time zone; consent off;
- carts: the last page and the platform's link back (a Shopify recovery URL is a credential);
- cart events: the contact, page and link in their payloads;
- messages: the address, subject and body; provider events about them: their payloads;
- survey answers: the comment; cases: notes, facts and what was done; tasks: notes, details;
- open carts are opted out and their workflows told why (a signal, so the history says it);
  open feedback cases' workflows are terminated with the reason (they carry the comment);
- the suppression list keeps a keyed digest of each address on every channel, so the shopper
  is never messaged again, even as a new customer with the same address.

What Temporal already recorded in workflow histories stays until the namespace's retention
removes it; Winback's inputs there are ids, except a case's comment and the customer's name.

Both are audited in ``PrivacyRequest`` (who, when, through what, what it covered).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from winback.carts.context import cart_link
from winback.carts.models import Cart, CartEvent
from winback.customers.consent_models import ConsentChange
from winback.customers.models import Customer
from winback.customers.privacy_models import PrivacyKind, PrivacyRequest, PrivacyStatus
from winback.feedback.models import FeedbackAnswer, FeedbackCase, SurveyInvite
from winback.messaging.models import Message, Suppression
from winback.messaging.provider_event_models import ProviderEvent
from winback.platform.clock import as_utc, utcnow
from winback.platform.crypto import address_digest
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from winback.tasks.models import HumanTask
from workflows.carts.cart_recovery import CartRecoveryWorkflow
from workflows.carts.types import OptedOut
from workflows.vocabulary import CartStatus, CaseStatus, TaskStatus

log = logging.getLogger(__name__)

ERASED_REASON = "customer_erased"
OPEN_CART_STATUSES = (CartStatus.ACTIVE, CartStatus.ABANDONED)
EVENT_PII_KEYS = ("customer", "page", "cart_url")


@dataclass(frozen=True)
class Subject:
    """Whom a request is about: any of the retailer's customer id, an email, a phone (E.164)."""

    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    order_ids: Sequence[str] = ()

    def masked(self) -> str:
        parts = [
            _mask_email(self.email) if self.email else None,
            _mask_phone(self.phone) if self.phone else None,
            f"customer {self.external_id}" if self.external_id else None,
        ]
        return ", ".join(p for p in parts if p) or "nobody"

    def addresses(self) -> list[str]:
        return [a for a in (self.email, self.phone) if a]


@dataclass
class Erasure:
    """What an erasure touched, and the cart workflows still to be told."""

    request: PrivacyRequest
    carts_to_stop: list[Cart] = field(default_factory=list)
    cases_to_stop: list[str] = field(default_factory=list)


class CustomerExport(BaseModel):
    request_id: int
    generated_at: str
    subject: str
    customers: list[dict[str, Any]]


async def find_customers(
    session: AsyncSession, *, retailer_id: str, subject: Subject
) -> list[Customer]:
    """The retailer's customers matching any identifier of the subject, or owning its orders."""
    clauses: list[Any] = []
    if subject.email:
        clauses.append(Customer.email == subject.email.lower())
    if subject.phone:
        clauses.append(Customer.phone == subject.phone)
    if subject.external_id:
        clauses.append(Customer.external_id == subject.external_id)
    found: dict[int, Customer] = {}
    if clauses:
        rows = await session.exec(
            select(Customer).where(Customer.retailer_id == retailer_id, or_(*clauses))
        )
        found = {c.id: c for c in rows if c.id is not None}
    if subject.order_ids:
        owners = await session.exec(
            select(Customer)
            .join(Cart, col(Cart.customer_id) == col(Customer.id))
            .where(Cart.retailer_id == retailer_id, col(Cart.order_id).in_(subject.order_ids))
        )
        found.update({c.id: c for c in owners if c.id is not None})
    return [found[k] for k in sorted(found)]


# --- export --------------------------------------------------------------------------------


async def export_customer_data(
    session: AsyncSession,
    *,
    retailer: Retailer,
    subject: Subject,
    source: str,
    requested_by: str,
    settings: Settings,
    pending: PrivacyRequest | None = None,
) -> CustomerExport:
    """Everything held about the subject, and the audit row that says it was handed out."""
    customers = await find_customers(session, retailer_id=retailer.id, subject=subject)
    documents = [await _customer_document(session, retailer, c) for c in customers]
    now = utcnow()
    request = pending or PrivacyRequest(
        retailer_id=retailer.id,
        kind=PrivacyKind.EXPORT,
        source=source,
        requested_by=requested_by,
        subject=subject.masked(),
        subject_digest=_digest(settings, subject),
    )
    request.status, request.completed_at, request.pending_subject = PrivacyStatus.DONE, now, {}
    request.summary = {
        "customers": len(documents),
        "carts": sum(len(d["carts"]) for d in documents),
        "messages": sum(len(d["messages"]) for d in documents),
        "feedback_answers": sum(len(d["feedback_answers"]) for d in documents),
    }
    session.add(request)
    await session.flush()
    assert request.id is not None
    return CustomerExport(
        request_id=request.id,
        generated_at=now.isoformat(),
        subject=request.subject,
        customers=documents,
    )


async def record_pending_export(
    session: AsyncSession,
    *,
    retailer_id: str,
    subject: Subject,
    source: str,
    requested_by: str,
    reference: str | None,
    settings: Settings,
) -> PrivacyRequest:
    """A data request the retailer fulfils later (``GET /v1/privacy-requests/{id}/export``)."""
    request = PrivacyRequest(
        retailer_id=retailer_id,
        kind=PrivacyKind.EXPORT,
        source=source,
        requested_by=requested_by,
        reference=reference,
        subject=subject.masked(),
        subject_digest=_digest(settings, subject),
        pending_subject={
            "email": subject.email,
            "phone": subject.phone,
            "external_id": subject.external_id,
            "order_ids": list(subject.order_ids),
        },
        status=PrivacyStatus.PENDING,
    )
    session.add(request)
    await session.flush()
    return request


def pending_subject(request: PrivacyRequest) -> Subject:
    data = request.pending_subject or {}
    return Subject(
        email=data.get("email"),
        phone=data.get("phone"),
        external_id=data.get("external_id"),
        order_ids=tuple(data.get("order_ids") or ()),
    )


async def _customer_document(
    session: AsyncSession, retailer: Retailer, customer: Customer
) -> dict[str, Any]:
    assert customer.id is not None
    carts = list(
        await session.exec(
            select(Cart)
            .where(Cart.retailer_id == retailer.id, Cart.customer_id == customer.id)
            .order_by(col(Cart.id))
        )
    )
    cart_ids = [c.cart_id for c in carts]
    events = await session.exec(
        select(CartEvent)
        .where(CartEvent.retailer_id == retailer.id, col(CartEvent.cart_id).in_(cart_ids))
        .order_by(col(CartEvent.id))
    )
    messages = await session.exec(
        select(Message)
        .where(Message.retailer_id == retailer.id, Message.customer_id == customer.id)
        .order_by(col(Message.id))
    )
    consent = await session.exec(
        select(ConsentChange)
        .where(ConsentChange.customer_id == customer.id)
        .order_by(col(ConsentChange.id))
    )
    answers = await session.exec(
        select(FeedbackAnswer)
        .where(FeedbackAnswer.retailer_id == retailer.id, FeedbackAnswer.customer_id == customer.id)
        .order_by(col(FeedbackAnswer.id))
    )
    cases = await session.exec(
        select(FeedbackCase)
        .where(FeedbackCase.retailer_id == retailer.id, FeedbackCase.customer_id == customer.id)
        .order_by(col(FeedbackCase.id))
    )
    tasks = await session.exec(
        select(HumanTask)
        .where(HumanTask.retailer_id == retailer.id, HumanTask.customer_id == customer.id)
        .order_by(col(HumanTask.created_at))
    )
    suppressed = await session.exec(
        select(Suppression).where(
            Suppression.retailer_id == retailer.id,
            col(Suppression.address).in_([a for a in (customer.email, customer.phone) if a]),
        )
    )
    return {
        "customer": customer.model_dump(mode="json", exclude={"retailer_id"}),
        "consent_history": [
            c.model_dump(mode="json", include={"channel", "granted", "source", "at"})
            for c in consent
        ],
        "carts": [
            {
                **c.model_dump(
                    mode="json",
                    include={
                        "cart_id",
                        "status",
                        "items",
                        "value",
                        "currency",
                        "created_at",
                        "last_activity_at",
                        "last_page",
                        "abandoned_at",
                        "ordered_at",
                        "order_id",
                        "order_value",
                        "opted_out_at",
                    },
                ),
                "link": cart_link(retailer, c),
            }
            for c in carts
        ],
        "cart_events": [
            e.model_dump(
                mode="json", include={"cart_id", "event_id", "type", "occurred_at", "payload"}
            )
            for e in events
        ],
        "messages": [
            m.model_dump(
                mode="json",
                include={
                    "id",
                    "channel",
                    "cart_id",
                    "template",
                    "to_address",
                    "subject",
                    "body",
                    "status",
                    "created_at",
                    "sent_at",
                    "reply",
                },
            )
            for m in messages
        ],
        "suppressions": [
            s.model_dump(mode="json", include={"channel", "address", "reason", "created_at"})
            for s in suppressed
        ],
        "feedback_answers": [
            a.model_dump(
                mode="json",
                include={
                    "id",
                    "channel",
                    "scale",
                    "score",
                    "comment",
                    "order_id",
                    "business_unit",
                    "touchpoint",
                    "answered_at",
                    "case_id",
                },
            )
            for a in answers
        ],
        "cases": [
            c.model_dump(
                mode="json",
                include={
                    "id",
                    "status",
                    "stage",
                    "severity",
                    "opened_at",
                    "closed_at",
                    "contact_outcome",
                    "root_cause",
                    "root_cause_notes",
                    "facts",
                    "resolution_code",
                    "action_taken",
                    "won_back",
                },
            )
            for c in cases
        ],
        "tasks": [
            t.model_dump(
                mode="json",
                include={
                    "id",
                    "kind",
                    "title",
                    "status",
                    "outcome",
                    "notes",
                    "created_at",
                    "completed_at",
                },
            )
            for t in tasks
        ],
    }


# --- erasure -------------------------------------------------------------------------------


async def erase_customer_data(
    session: AsyncSession,
    *,
    retailer: Retailer,
    subject: Subject,
    source: str,
    requested_by: str,
    settings: Settings,
    reference: str | None = None,
) -> Erasure:
    """Removes the subject's personal data (caller commits, then ``stop_workflows``)."""
    customers = await find_customers(session, retailer_id=retailer.id, subject=subject)
    now = utcnow()
    counts = dict.fromkeys(
        (
            "customers",
            "carts",
            "cart_events",
            "messages",
            "provider_events",
            "feedback_answers",
            "cases",
            "tasks",
            "suppressed_addresses",
        ),
        0,
    )
    erasure = Erasure(
        request=PrivacyRequest(
            retailer_id=retailer.id,
            kind=PrivacyKind.ERASE,
            source=source,
            requested_by=requested_by,
            reference=reference,
            subject=subject.masked(),
            subject_digest=_digest(settings, subject),
        )
    )
    addresses = set(subject.addresses())
    for customer in customers:
        assert customer.id is not None
        addresses.update(a for a in (customer.email, customer.phone) if a)
        await _erase_carts(session, retailer.id, customer, counts, erasure)
        message_ids = await _erase_messages(session, retailer.id, customer.id, counts)
        await _erase_provider_events(session, retailer.id, message_ids, addresses, counts)
        await _erase_feedback(session, retailer.id, customer.id, counts, erasure)
        await _erase_tasks(session, retailer.id, customer.id, counts)
        for attr in ("email", "phone", "name", "external_id", "locale", "timezone"):
            setattr(customer, attr, None)
        customer.consent_email = customer.consent_sms = customer.consent_voice = False
        customer.erased_at = customer.updated_at = now
        session.add(customer)
        counts["customers"] += 1
    for address in sorted(addresses):
        await _suppress_digest(session, retailer.id, address, settings)
        counts["suppressed_addresses"] += 1
    await _forget_pending_requests(session, retailer.id, addresses)
    erasure.request.summary = counts
    erasure.request.completed_at = now
    session.add(erasure.request)
    await session.flush()
    return erasure


async def stop_workflows(client: Client, erasure: Erasure) -> list[str]:
    """Tells the erased shopper's cart workflows why they stop (the ``opted_out`` signal with
    the reason), and terminates the open cases' workflows. Returns what was stopped; a
    workflow that already finished needs nothing. Caller commits the carts' flags."""
    stopped: list[str] = []
    for cart in erasure.carts_to_stop:
        if not cart.workflow_started or cart.opt_out_signalled or not cart.workflow_id:
            continue
        handle = client.get_workflow_handle_for(CartRecoveryWorkflow.run, cart.workflow_id)
        try:
            await handle.signal(CartRecoveryWorkflow.opted_out, OptedOut(reason=ERASED_REASON))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        cart.opt_out_signalled = True
        stopped.append(cart.workflow_id)
    for workflow_id in erasure.cases_to_stop:
        try:
            await client.get_workflow_handle(workflow_id).terminate(
                reason="the customer's data was erased on request"
            )
            stopped.append(workflow_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    return stopped


async def _erase_carts(
    session: AsyncSession,
    retailer_id: str,
    customer: Customer,
    counts: dict[str, int],
    erasure: Erasure,
) -> None:
    carts = list(
        await session.exec(
            select(Cart).where(Cart.retailer_id == retailer_id, Cart.customer_id == customer.id)
        )
    )
    now = utcnow()
    for cart in carts:
        cart.last_page = None
        cart.link_url = None
        if cart.status in OPEN_CART_STATUSES:
            cart.status, cart.opted_out_at = CartStatus.OPTED_OUT, now
        if (
            cart.workflow_started
            and not cart.opt_out_signalled
            and cart.status == CartStatus.OPTED_OUT
        ):
            erasure.carts_to_stop.append(cart)
        session.add(cart)
        counts["carts"] += 1
    events = await session.exec(
        select(CartEvent).where(
            CartEvent.retailer_id == retailer_id,
            col(CartEvent.cart_id).in_([c.cart_id for c in carts]),
        )
    )
    for event in events:
        payload = dict(event.payload or {})
        if any(key in payload for key in EVENT_PII_KEYS):
            event.payload = {k: v for k, v in payload.items() if k not in EVENT_PII_KEYS}
            session.add(event)
        counts["cart_events"] += 1


async def _erase_messages(
    session: AsyncSession, retailer_id: str, customer_id: int, counts: dict[str, int]
) -> list[int]:
    messages = list(
        await session.exec(
            select(Message).where(
                Message.retailer_id == retailer_id, Message.customer_id == customer_id
            )
        )
    )
    for message in messages:
        message.to_address, message.subject, message.body, message.html = None, None, "", None
        message.reply = None if message.channel != "onsite" else message.reply
        session.add(message)
        counts["messages"] += 1
    return [m.id for m in messages if m.id is not None]


async def _erase_provider_events(
    session: AsyncSession,
    retailer_id: str,
    message_ids: list[int],
    addresses: set[str],
    counts: dict[str, int],
) -> None:
    """Provider events about the shopper's messages, and inbound ones from their addresses."""
    rows = await session.exec(
        select(ProviderEvent).where(
            ProviderEvent.retailer_id == retailer_id,
            or_(
                col(ProviderEvent.message_id).in_(message_ids),
                col(ProviderEvent.message_id).is_(None),
            ),
        )
    )
    for row in rows:
        payload = row.payload or {}
        about = row.message_id is not None or any(
            str(value).strip().lower() in addresses
            for value in payload.values()
            if isinstance(value, str)
        )
        if about and payload != {"erased": True}:
            row.payload = {"erased": True}
            session.add(row)
            counts["provider_events"] += 1


async def _erase_feedback(
    session: AsyncSession,
    retailer_id: str,
    customer_id: int,
    counts: dict[str, int],
    erasure: Erasure,
) -> None:
    answers = await session.exec(
        select(FeedbackAnswer).where(
            FeedbackAnswer.retailer_id == retailer_id, FeedbackAnswer.customer_id == customer_id
        )
    )
    for answer in answers:
        answer.comment = None
        session.add(answer)
        counts["feedback_answers"] += 1
    cases = await session.exec(
        select(FeedbackCase).where(
            FeedbackCase.retailer_id == retailer_id, FeedbackCase.customer_id == customer_id
        )
    )
    now = utcnow()
    for case in cases:
        case.root_cause_notes, case.action_taken, case.facts = None, None, []
        if case.status == CaseStatus.OPEN:
            case.status, case.close_reason, case.closed_at = CaseStatus.CLOSED, ERASED_REASON, now
            erasure.cases_to_stop.append(case.workflow_id)
        session.add(case)
        counts["cases"] += 1
    # Survey invites keep the number they texted (to match replies): dropped, and closed so
    # their links answer "this survey has closed".
    invites = await session.exec(
        select(SurveyInvite).where(
            SurveyInvite.retailer_id == retailer_id, SurveyInvite.customer_id == customer_id
        )
    )
    for invite in invites:
        invite.phone = None
        invite.expires_at = min(as_utc(invite.expires_at), now)
        session.add(invite)


async def _erase_tasks(
    session: AsyncSession, retailer_id: str, customer_id: int, counts: dict[str, int]
) -> None:
    tasks = await session.exec(
        select(HumanTask).where(
            HumanTask.retailer_id == retailer_id, HumanTask.customer_id == customer_id
        )
    )
    for task in tasks:
        task.title = f"{task.kind} (customer erased)"
        task.notes, task.details = None, {}
        if task.status in TaskStatus.ACTIVE:
            task.status = TaskStatus.CANCELLED
        session.add(task)
        counts["tasks"] += 1


async def _suppress_digest(
    session: AsyncSession, retailer_id: str, address: str, settings: Settings
) -> None:
    """The address's plain entries go; one digest entry on every channel stays."""
    plain = await session.exec(
        select(Suppression).where(
            Suppression.retailer_id == retailer_id, Suppression.address == address
        )
    )
    for row in plain:
        await session.delete(row)
    digest = address_digest(settings, address)
    existing = await session.exec(
        select(Suppression.id).where(
            Suppression.retailer_id == retailer_id,
            Suppression.channel == "all",
            Suppression.address == digest,
        )
    )
    if existing.first() is None:
        session.add(
            Suppression(
                retailer_id=retailer_id, channel="all", address=digest, reason=ERASED_REASON
            )
        )
    await session.flush()


async def _forget_pending_requests(
    session: AsyncSession, retailer_id: str, addresses: set[str]
) -> None:
    """An open data request about an erased shopper can no longer be fulfilled: its subject goes."""
    rows = await session.exec(
        select(PrivacyRequest).where(
            PrivacyRequest.retailer_id == retailer_id,
            PrivacyRequest.status == PrivacyStatus.PENDING,
        )
    )
    for row in rows:
        subject = row.pending_subject or {}
        if {subject.get("email"), subject.get("phone")} & addresses:
            row.pending_subject = {}
            row.status, row.completed_at = PrivacyStatus.DONE, utcnow()
            row.summary = {"superseded_by": "erasure"}
            session.add(row)


def _digest(settings: Settings, subject: Subject) -> str | None:
    first = next(iter(subject.addresses()), None)
    return address_digest(settings, first) if first else None


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_phone(phone: str) -> str:
    return f"{phone[:3]}***{phone[-2:]}" if len(phone) > 5 else "***"
