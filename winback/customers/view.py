"""What an agent sees when a shopper calls: the customer found by phone or email, their open and
recent carts with items and links, what they did on the site, every message and nudge sent to
them, their open feedback cases and latest survey answers, and the tasks still open about them
(their carts' and their cases'). Always scoped to one retailer."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.context import cart_link
from winback.carts.models import Cart, CartEvent
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.messaging.models import Message, Suppression
from winback.retailers.models import Retailer
from winback.tasks.commands import task_public
from winback.tasks.models import HumanTask, TaskPublic
from workflows.vocabulary import CartStatus, CaseStatus, TaskStatus

RECENT = timedelta(days=30)  # carts older than this show only while still open
MAX_CUSTOMERS = 10
MAX_CARTS = 20
MAX_ACTIVITY = 20
MAX_MESSAGES = 100
MAX_OPEN_CASES = 20
MAX_ANSWERS = 10
OPEN_CART_STATUSES = (CartStatus.ACTIVE, CartStatus.ABANDONED)


class Consent(BaseModel):
    email: bool
    sms: bool
    voice: bool


class CartView(BaseModel):
    cart_id: str
    status: str
    items: list[dict[str, Any]]
    value: float
    currency: str
    link: str = Field(description="The cart on the store, from the retailer's cart URL template.")
    last_activity_at: datetime | None
    last_page: str | None
    abandoned_at: datetime | None
    ordered_at: datetime | None
    order_id: str | None
    created_at: datetime


class ActivityView(BaseModel):
    cart_id: str
    type: str
    page: str | None
    at: datetime


class MessageView(BaseModel):
    id: int
    cart_id: str | None
    channel: str
    status: str = Field(description="Delivery state: sent, failed, pending (a nudge), ...")
    to: str | None
    subject: str | None
    body: str
    reply: str | None = Field(description="The shopper's reply or a call's outcome.")
    error: str | None
    created_at: datetime
    sent_at: datetime | None


class CaseView(BaseModel):
    id: int = Field(description="GET /v1/cases/{id} for the whole case.")
    workflow_id: str
    severity: str
    stage: str
    business_unit: str
    owner: str | None
    opened_at: datetime


class AnswerView(BaseModel):
    id: int
    channel: str
    scale: str
    score: int
    comment: str | None
    kind: str
    business_unit: str
    answered_at: datetime
    case_id: int | None


class CustomerView(BaseModel):
    id: int
    external_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    consent: Consent
    suppressed: list[str] = Field(description="Channels this shopper must never get again.")
    carts: list[CartView] = Field(description="Open carts, and any cart of the last 30 days.")
    activity: list[ActivityView] = Field(description="The latest on-site events, newest first.")
    messages: list[MessageView] = Field(description="Every message and nudge, newest first.")
    open_cases: list[CaseView] = Field(description="Feedback cases still open, newest first.")
    recent_answers: list[AnswerView] = Field(
        description=f"The latest {MAX_ANSWERS} survey answers, newest first."
    )
    open_tasks: list[TaskPublic] = Field(description="About their carts and their cases.")


class CallbackCartView(CartView):
    open_tasks: list[TaskPublic] = Field(description="The callback task and any other open one.")


class CustomerLookup(BaseModel):
    phone: str | None = Field(description="The phone searched for, as E.164.")
    email: str | None
    customers: list[CustomerView]
    callback_carts: list[CallbackCartView] = Field(
        default_factory=list,
        description="Carts whose shopper typed this number into the on-site 'call me back' "
        "form. Not verified: the number is used for that callback only.",
    )


async def find_callback_carts(
    session: AsyncSession, *, retailer: Retailer, phone: str, now: datetime
) -> list[CallbackCartView]:
    """Carts whose shopper asked, on the site, to be called back at this E.164 number."""
    carts = (
        await session.exec(
            select(Cart)
            .where(Cart.retailer_id == retailer.id, Cart.callback_phone == phone)
            .order_by(col(Cart.last_activity_at).desc())
            .limit(MAX_CARTS)
        )
    ).all()
    views = []
    for cart in carts:
        tasks = await _open_tasks(session, retailer.id, None, [cart.cart_id], [], now)
        views.append(CallbackCartView(**_cart_view(retailer, cart).model_dump(), open_tasks=tasks))
    return views


async def find_customers(
    session: AsyncSession, *, retailer_id: str, phone: str | None = None, email: str | None = None
) -> list[Customer]:
    """Customers with this E.164 phone or this email (any case)."""
    query = select(Customer).where(Customer.retailer_id == retailer_id)
    if phone is not None:
        query = query.where(Customer.phone == phone)
    if email is not None:
        query = query.where(func.lower(col(Customer.email)) == email.lower())
    rows = await session.exec(
        query.order_by(col(Customer.updated_at).desc(), col(Customer.id)).limit(MAX_CUSTOMERS)
    )
    return list(rows)


async def find_customer(
    session: AsyncSession, *, retailer_id: str, customer_id: int
) -> Customer | None:
    """One of the retailer's customers by id (None for another retailer's)."""
    customer = await session.get(Customer, customer_id)
    return customer if customer is not None and customer.retailer_id == retailer_id else None


async def customer_view(
    session: AsyncSession, *, retailer: Retailer, customer: Customer, now: datetime
) -> CustomerView:
    assert customer.id is not None
    all_carts = (
        await session.exec(
            select(Cart).where(Cart.retailer_id == retailer.id, Cart.customer_id == customer.id)
        )
    ).all()
    cart_ids = [c.cart_id for c in all_carts]
    open_cases = await _open_cases(session, retailer.id, customer.id)
    shown = sorted(
        (c for c in all_carts if c.status in OPEN_CART_STATUSES or _recent(c, now)),
        key=lambda c: c.last_activity_at or c.created_at,
        reverse=True,
    )[:MAX_CARTS]
    return CustomerView(
        id=customer.id,
        external_id=customer.external_id,
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        locale=customer.locale,
        timezone=customer.timezone,
        consent=Consent(
            email=customer.consent_email, sms=customer.consent_sms, voice=customer.consent_voice
        ),
        suppressed=await _suppressed(session, retailer.id, customer),
        carts=[_cart_view(retailer, c) for c in shown],
        activity=await _activity(session, retailer.id, [c.cart_id for c in shown]),
        messages=await _messages(session, retailer.id, customer.id, cart_ids),
        open_cases=[CaseView.model_validate(c, from_attributes=True) for c in open_cases],
        recent_answers=await _recent_answers(session, retailer.id, customer.id),
        open_tasks=await _open_tasks(
            session, retailer.id, customer.id, cart_ids, [str(c.id) for c in open_cases], now
        ),
    )


def _recent(cart: Cart, now: datetime) -> bool:
    return (cart.last_activity_at or cart.created_at) >= now - RECENT


def _cart_view(retailer: Retailer, cart: Cart) -> CartView:
    return CartView(
        cart_id=cart.cart_id,
        status=cart.status,
        items=cart.items,
        value=cart.value,
        currency=cart.currency,
        link=cart_link(retailer, cart),
        last_activity_at=cart.last_activity_at,
        last_page=cart.last_page,
        abandoned_at=cart.abandoned_at,
        ordered_at=cart.ordered_at,
        order_id=cart.order_id,
        created_at=cart.created_at,
    )


async def _suppressed(session: AsyncSession, retailer_id: str, customer: Customer) -> list[str]:
    addresses = [a for a in (customer.email, customer.phone) if a]
    if not addresses:
        return []
    rows = await session.exec(
        select(Suppression.channel).where(
            Suppression.retailer_id == retailer_id, col(Suppression.address).in_(addresses)
        )
    )
    return sorted(set(rows))


async def _activity(
    session: AsyncSession, retailer_id: str, cart_ids: Sequence[str]
) -> list[ActivityView]:
    if not cart_ids:
        return []
    rows = await session.exec(
        select(CartEvent)
        .where(CartEvent.retailer_id == retailer_id, col(CartEvent.cart_id).in_(cart_ids))
        .order_by(col(CartEvent.occurred_at).desc(), col(CartEvent.id).desc())
        .limit(MAX_ACTIVITY)
    )
    return [
        ActivityView(cart_id=e.cart_id, type=e.type, page=e.payload.get("page"), at=e.occurred_at)
        for e in rows
    ]


async def _messages(
    session: AsyncSession, retailer_id: str, customer_id: int, cart_ids: Sequence[str]
) -> list[MessageView]:
    mine = col(Message.customer_id) == customer_id
    rows = await session.exec(
        select(Message)
        .where(
            Message.retailer_id == retailer_id,
            or_(mine, col(Message.cart_id).in_(cart_ids)) if cart_ids else mine,
        )
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(MAX_MESSAGES)
    )
    return [
        MessageView(
            id=m.id or 0,
            cart_id=m.cart_id,
            channel=m.channel,
            status=m.status,
            to=m.to_address,
            subject=m.subject,
            body=m.body,
            reply=m.reply,
            error=m.error,
            created_at=m.created_at,
            sent_at=m.sent_at,
        )
        for m in rows
    ]


async def _open_cases(
    session: AsyncSession, retailer_id: str, customer_id: int
) -> list[FeedbackCase]:
    rows = await session.exec(
        select(FeedbackCase)
        .where(
            FeedbackCase.retailer_id == retailer_id,
            FeedbackCase.customer_id == customer_id,
            FeedbackCase.status == CaseStatus.OPEN,
        )
        .order_by(col(FeedbackCase.opened_at).desc(), col(FeedbackCase.id).desc())
        .limit(MAX_OPEN_CASES)
    )
    return list(rows)


async def _recent_answers(
    session: AsyncSession, retailer_id: str, customer_id: int
) -> list[AnswerView]:
    rows = await session.exec(
        select(FeedbackAnswer)
        .where(FeedbackAnswer.retailer_id == retailer_id, FeedbackAnswer.customer_id == customer_id)
        .order_by(col(FeedbackAnswer.answered_at).desc(), col(FeedbackAnswer.id).desc())
        .limit(MAX_ANSWERS)
    )
    return [AnswerView.model_validate(a, from_attributes=True) for a in rows]


async def _open_tasks(
    session: AsyncSession,
    retailer_id: str,
    customer_id: int | None,
    cart_ids: Sequence[str],
    case_ids: Sequence[str],
    now: datetime,
) -> list[TaskPublic]:
    """Tasks about the customer: by the row's customer, or about one of their carts or open
    cases (a case's tasks name the case, not the customer)."""
    about = [col(HumanTask.customer_id) == customer_id] if customer_id is not None else []
    if cart_ids:
        about.append(col(HumanTask.cart_id).in_(cart_ids))
    if case_ids:
        about.append(col(HumanTask.case_id).in_(case_ids))
    if not about:
        return []
    rows = await session.exec(
        select(HumanTask)
        .where(
            HumanTask.retailer_id == retailer_id,
            col(HumanTask.status).in_(TaskStatus.ACTIVE),
            or_(*about),
        )
        .order_by(col(HumanTask.due_at), col(HumanTask.id))
    )
    return [task_public(t, now) for t in rows]
