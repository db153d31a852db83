"""What SendGrid and Twilio tell us after a send: delivery states, opt-outs, replies.

The API routes verify each provider's signature; this module stores each event once
(``ProviderEvent``), moves the message's status forward (never back: a late ``delivered`` does
not undo ``clicked``), and turns unsubscribes, spam reports, hard bounces and STOP texts into
suppressions and consent changes. It returns the carts whose workflows must now be told.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.carts.models import Cart, CartEvent
from winback.customers.models import Customer
from winback.customers.opt_outs import customers_by_address, resume_contact, stop_contact
from winback.messaging.models import Message
from winback.messaging.provider_event_models import ProviderEvent
from winback.platform.clock import utcnow
from workflows.vocabulary import CartStatus, MessageStatus

SENDGRID = "sendgrid"
TWILIO = "twilio"

# Message states reported by the providers, beyond the ones the send itself sets.
DELIVERED = MessageStatus.DELIVERED
OPENED = MessageStatus.OPENED  # the names `unless: email_opened / email_clicked` steps look for
CLICKED = MessageStatus.CLICKED
BOUNCED = MessageStatus.BOUNCED
DROPPED = MessageStatus.DROPPED
SPAM_REPORT = MessageStatus.SPAM_REPORT
UNSUBSCRIBED = MessageStatus.UNSUBSCRIBED
UNDELIVERED = MessageStatus.UNDELIVERED
READ = MessageStatus.READ

# A status only moves to a higher rank, so events arriving out of order cannot undo each other.
_RANK: dict[str, int] = {
    MessageStatus.SENDING: 0,
    MessageStatus.SENT: 0,
    DELIVERED: 1,
    BOUNCED: 1,
    DROPPED: 1,
    UNDELIVERED: 1,
    OPENED: 2,
    READ: 2,
    CLICKED: 3,
    SPAM_REPORT: 4,
    UNSUBSCRIBED: 4,
    MessageStatus.FAILED: 5,
}
SENDGRID_STATUS = {
    "delivered": DELIVERED,
    "open": OPENED,
    "click": CLICKED,
    "bounce": BOUNCED,
    "dropped": DROPPED,
    "spamreport": SPAM_REPORT,
    "unsubscribe": UNSUBSCRIBED,
    "group_unsubscribe": UNSUBSCRIBED,
}
TWILIO_SMS_STATUS = {
    "delivered": DELIVERED,
    "undelivered": UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "read": READ,
}
TWILIO_UNSUBSCRIBED_RECIPIENT = "21610"  # the number texted STOP to our sender at Twilio

# Twilio's default opt-out keywords: Twilio blocks the number on any of them, so must we.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO"}
DEFAULT_HELP_TEXT = (
    "{store}: cart reminders. Reply STOP to opt out, START to opt back in. "
    "Msg & data rates may apply."
)


@dataclass
class Outcome:
    """What the caller must do after committing: tell these carts, send this reply."""

    stored: int = 0
    duplicates: int = 0
    carts: list[Cart] = field(default_factory=list)
    reply: str | None = None


def fallback_event_id(payload: dict[str, Any]) -> str:
    """For an event without an id: the same content gives the same id."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


async def record_once(
    session: AsyncSession,
    *,
    retailer_id: str,
    provider: str,
    event_id: str,
    type: str,
    payload: dict[str, Any],
    message_id: int | None = None,
) -> bool:
    """Stores the event; False if this provider already delivered it to this retailer."""
    seen = await session.exec(
        select(ProviderEvent.id).where(
            ProviderEvent.retailer_id == retailer_id,
            ProviderEvent.provider == provider,
            ProviderEvent.event_id == event_id[:200],
        )
    )
    if seen.first() is not None:
        return False
    session.add(
        ProviderEvent(
            retailer_id=retailer_id,
            provider=provider,
            event_id=event_id[:200],
            type=type[:40],
            message_id=message_id,
            payload=payload,
        )
    )
    # A concurrent delivery of the same event fails here (IntegrityError); the webhook routes
    # retry the whole delivery (``retry_on_conflict``), which then finds it stored.
    await session.flush()
    return True


def _advance(message: Message, status: str, error: str | None = None) -> None:
    if _RANK.get(status, 0) > _RANK.get(message.status, 0):
        message.status = status
        if error:
            message.error = error


async def _message(
    session: AsyncSession, retailer_id: str, *, id: int | None = None, sid: str | None = None
) -> Message | None:
    query = select(Message).where(Message.retailer_id == retailer_id)
    if id is not None:
        query = query.where(Message.id == id)
    elif sid:
        query = query.where(Message.provider_message_id == sid)
    else:
        return None
    return (await session.exec(query)).first()


async def _customers(
    session: AsyncSession, retailer_id: str, message: Message | None, channel: str, address: str
) -> list[Customer]:
    found = await customers_by_address(
        session, retailer_id=retailer_id, channel=channel, address=address
    )
    known = message.customer_id if message is not None else None
    if known is not None and all(c.id != known for c in found):
        customer = await session.get(Customer, known)
        if customer is not None:
            found.append(customer)
    return found


# --- SendGrid ---------------------------------------------------------------------------------


def _message_id_of(event: dict[str, Any]) -> int | None:
    """Custom args come flattened into the event; some integrations nest them."""
    nested = event.get("custom_args")
    raw = event.get("winback_message_id")
    if raw is None and isinstance(nested, dict):
        raw = nested.get("winback_message_id")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


async def apply_sendgrid_events(
    session: AsyncSession, *, retailer_id: str, events: list[dict[str, Any]]
) -> Outcome:
    outcome = Outcome()
    for event in events:
        kind = str(event.get("event") or "unknown")
        message_id = _message_id_of(event)
        message = (
            await _message(session, retailer_id, id=message_id) if message_id is not None else None
        )
        event_id = str(event.get("sg_event_id") or fallback_event_id(event))
        is_new = await record_once(
            session,
            retailer_id=retailer_id,
            provider=SENDGRID,
            event_id=event_id,
            type=kind,
            payload=event,
            message_id=message.id if message else None,
        )
        if not is_new:
            outcome.duplicates += 1
            continue
        outcome.stored += 1
        hard_bounce = kind == "bounce" and event.get("type", "bounce") == "bounce"
        status = SENDGRID_STATUS.get(kind)
        if kind == "bounce" and not hard_bounce:
            status = None  # "blocked": a soft bounce, SendGrid may retry
        if message is not None and status is not None:
            _advance(message, status, str(event.get("reason") or "") or None)
            session.add(message)
        address = str(event.get("email") or (message.to_address if message else "") or "")
        address = address.strip().lower()
        reason = {
            "unsubscribe": "unsubscribe",
            "group_unsubscribe": "unsubscribe",
            "spamreport": "spam_report",
        }.get(kind) or ("bounce" if hard_bounce else None)
        if reason is None or not address:
            continue
        customers = await _customers(session, retailer_id, message, "email", address)
        outcome.carts += await stop_contact(
            session,
            retailer_id=retailer_id,
            channels=["email"],
            address=address,
            customers=customers,
            reason=reason,
            withdraw_consent=reason != "bounce",  # a bounce is a bad address, not a choice
        )
    return outcome


# --- Twilio -----------------------------------------------------------------------------------


async def apply_twilio_sms_status(
    session: AsyncSession, *, retailer_id: str, form: dict[str, str]
) -> Outcome:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    state = form.get("MessageStatus") or form.get("SmsStatus") or "unknown"
    message = await _message(session, retailer_id, sid=sid)
    event_id = f"{sid}:{state}" if sid else fallback_event_id(form)
    if not await record_once(
        session,
        retailer_id=retailer_id,
        provider=TWILIO,
        event_id=event_id,
        type=f"sms_{state}",
        payload=form,
        message_id=message.id if message else None,
    ):
        return Outcome(duplicates=1)
    outcome = Outcome(stored=1)
    code = form.get("ErrorCode") or None
    if message is not None and state in TWILIO_SMS_STATUS:
        _advance(message, TWILIO_SMS_STATUS[state], f"Twilio error {code}" if code else None)
        session.add(message)
    if code == TWILIO_UNSUBSCRIBED_RECIPIENT and message is not None and message.to_address:
        customers = await _customers(session, retailer_id, message, "sms", message.to_address)
        outcome.carts += await stop_contact(
            session,
            retailer_id=retailer_id,
            channels=["sms", "voice"],
            address=message.to_address,
            customers=customers,
            reason="sms_stop",
        )
    return outcome


def _voice_status(call_status: str, answered_by: str | None) -> str:
    if call_status == "completed" and answered_by and answered_by.startswith("machine"):
        return "voicemail"
    if call_status == "completed":
        return "answered" if answered_by == "human" else "completed"
    return call_status.replace("-", "_")  # busy, no_answer, failed, canceled


async def apply_twilio_voice_status(
    session: AsyncSession, *, retailer_id: str, form: dict[str, str]
) -> Outcome:
    sid = form.get("CallSid") or ""
    state = form.get("CallStatus") or "unknown"
    message = await _message(session, retailer_id, sid=sid)
    event_id = f"{sid}:{state}" if sid else fallback_event_id(form)
    if not await record_once(
        session,
        retailer_id=retailer_id,
        provider=TWILIO,
        event_id=event_id,
        type=f"call_{state}",
        payload=form,
        message_id=message.id if message else None,
    ):
        return Outcome(duplicates=1)
    final = state in ("completed", "busy", "no-answer", "failed", "canceled")
    if message is not None and final and message.status != MessageStatus.FAILED:
        message.reply = _voice_status(state, form.get("AnsweredBy"))
        session.add(message)
    return Outcome(stored=1)


def keyword(body: str) -> str:
    """The message as an opt-out keyword: one word, any case, trailing punctuation ignored."""
    return re.sub(r"[\s.!]+$", "", body.strip()).upper()


async def apply_twilio_inbound(
    session: AsyncSession,
    *,
    retailer_id: str,
    store_name: str,
    form: dict[str, str],
    help_text: str | None = None,
    reply_opens_task: bool = False,
) -> Outcome:
    sid = form.get("SmsSid") or form.get("MessageSid") or ""
    sender = (form.get("From") or "").strip()
    body = form.get("Body") or ""
    word = keyword(body)
    if not await record_once(
        session,
        retailer_id=retailer_id,
        provider=TWILIO,
        event_id=sid or fallback_event_id(form),
        type="sms_inbound",
        payload=form,
    ):
        return Outcome(duplicates=1)
    outcome = Outcome(stored=1)
    if not sender:
        return outcome
    customers = await customers_by_address(
        session, retailer_id=retailer_id, channel="sms", address=sender
    )
    if word in STOP_WORDS:
        outcome.carts += await stop_contact(
            session,
            retailer_id=retailer_id,
            channels=["sms", "voice"],
            address=sender,
            customers=customers,
            reason="sms_stop",
        )
    elif word in START_WORDS:
        # Texts only: a START is consent to texts, not to calls.
        await resume_contact(
            session,
            retailer_id=retailer_id,
            channels=["sms"],
            address=sender,
            customers=customers,
            source="sms_start",
        )
    elif word in HELP_WORDS:
        outcome.reply = help_text or DEFAULT_HELP_TEXT.format(store=store_name)
    else:
        cart = await _note_reply(session, retailer_id, customers, sid, sender, body)
        finished = cart is None or cart.status in (CartStatus.ORDERED, CartStatus.OPTED_OUT)
        if reply_opens_task and not finished and cart is not None and cart.workflow_started:
            cart.callback_requested = True  # the caller tells its workflow: an agent calls back
            session.add(cart)
            outcome.carts.append(cart)
    return outcome


async def _note_reply(
    session: AsyncSession,
    retailer_id: str,
    customers: list[Customer],
    sid: str,
    sender: str,
    body: str,
) -> Cart | None:
    """Keeps a free-text reply on the shopper's latest cart, for the agents to read."""
    ids = [c.id for c in customers if c.id is not None]
    if not ids:
        return None
    cart = (
        await session.exec(
            select(Cart)
            .where(Cart.retailer_id == retailer_id, col(Cart.customer_id).in_(ids))
            .order_by(col(Cart.created_at).desc(), col(Cart.id).desc())
            .limit(1)
        )
    ).first()
    if cart is None:
        return None
    now = utcnow()
    session.add(
        CartEvent(
            retailer_id=retailer_id,
            cart_id=cart.cart_id,
            event_id=f"twilio:{sid}"[:200] if sid else fallback_event_id({"f": sender, "b": body}),
            type="sms_reply",
            occurred_at=now,
            received_at=now,
            payload={"from": sender, "body": body, "message_sid": sid},
        )
    )
    await session.flush()
    return cart


AGENT_DIGIT = "1"


async def apply_twilio_voice_gather(
    session: AsyncSession, *, retailer_id: str, message_id: int | None, form: dict[str, str]
) -> Outcome:
    """A key pressed during one of our calls. "1" asks for an agent: the call's cart gets
    ``callback_requested`` (the caller then tells its workflow, which opens a callback task).
    ``Outcome.carts`` holds that cart; ``Outcome.reply`` is "callback" when one was asked for."""
    sid = form.get("CallSid") or ""
    digits = (form.get("Digits") or "").strip()
    message = await _message(session, retailer_id, id=message_id) if message_id else None
    if message is not None and message.channel != "voice":
        message = None
    event_id = f"{sid}:gather" if sid else fallback_event_id(form)
    if not await record_once(
        session,
        retailer_id=retailer_id,
        provider=TWILIO,
        event_id=event_id,
        type="call_gather",
        payload=form,
        message_id=message.id if message else None,
    ):
        return Outcome(duplicates=1)
    outcome = Outcome(stored=1)
    if digits != AGENT_DIGIT:
        return outcome
    outcome.reply = "callback"
    if message is None or not message.cart_id:
        return outcome
    cart = (
        await session.exec(
            select(Cart).where(Cart.retailer_id == retailer_id, Cart.cart_id == message.cart_id)
        )
    ).first()
    if cart is None or cart.status in (CartStatus.ORDERED, CartStatus.OPTED_OUT):
        return outcome
    if not cart.callback_requested:
        cart.callback_requested = True
        session.add(cart)
        await session.flush()
    outcome.carts.append(cart)
    return outcome
