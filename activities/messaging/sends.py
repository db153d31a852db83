"""Sending a cadence step and offering the on-site nudge.

Every guard is checked here, right before the send, against the database as it is now: the
cart's status, the step's conditions, the address and consent for the channel, the suppression
list, quiet hours in the recipient's zone, and the per-customer frequency cap across carts.

Idempotency: a message's ``dedupe_key`` (``<workflow id>/step-<n>``) is claimed with a unique
row before the provider is called. A retried activity finds the row and does not send again.
If a worker dies between the claim and the provider's answer, the row stays ``sending`` and the
step is not retried: at most once, never twice.
"""

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx
from jinja2 import TemplateError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from winback.carts.context import CartContext, load_cart_context
from winback.carts.discount_models import DiscountCode
from winback.carts.models import CartStatus
from winback.customers.models import Customer
from winback.messaging.channels import (
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from winback.messaging.channels.router import Adapters, as_router
from winback.messaging.channels.twilio_channels import voice_gather_url
from winback.messaging.models import Message, MessageStatus, Suppression
from winback.messaging.quiet_hours import parse_clock, quiet_until, recipient_zone
from winback.messaging.template_models import MessageTemplate
from winback.messaging.template_runner import RenderTimeout, template_runner
from winback.messaging.templates import (
    DEFAULT_TEMPLATES,
    MessageContext,
    RenderedMessage,
    TemplateSource,
)
from winback.messaging.unsubscribe import unsubscribe_url
from winback.messaging.unsubscribe_footer import with_unsubscribe_link
from winback.platform.clock import utcnow
from winback.platform.db import SessionFactory, session_scope
from winback.platform.outbound_urls import UnsafeUrl, check_outbound_url
from winback.platform.settings import Settings
from winback.platform.signing import SIGNATURE_HEADER, sign
from workflows.carts.types import (
    SEND_ATTEMPTS,
    OfferNudgeInput,
    OfferNudgeResult,
    RecordCallInput,
    SendStepInput,
    SendStepResult,
    StepOutcome,
    StepSpec,
)

log = logging.getLogger(__name__)

CALL_CHANNELS = ("sms", "voice", "agent_call")  # the channels quiet hours apply to
PHONE_CHANNELS = ("sms", "voice", "agent_call")
TOUCH_CHANNELS = ("email", "sms", "voice", "agent_call")  # what the frequency cap counts
REACHED = ("reached_purchased", "reached_not_interested", "voicemail")
COUNTED_STATUSES = MessageStatus.WENT_OUT
TWILIO_OPTED_OUT = "21610"  # Twilio refused: the number texted STOP to our sender


def dedupe_key(workflow_id: str, step_index: int, suffix: str = "") -> str:
    return f"{workflow_id}/step-{step_index}{suffix}"


class MessagingActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        adapters: Adapters,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessions = sessions
        self._adapters = as_router(adapters)
        self._settings = settings
        self._http = http

    @activity.defn
    async def send_step(self, input: SendStepInput) -> SendStepResult:
        """Checks every guard, then sends the step once through its channel's adapter."""
        step = input.step
        key = dedupe_key(input.workflow_id, step.index, input.key_suffix)
        async with session_scope(self._sessions) as session:
            existing = await message_by_key(session, key)
            if existing is not None:
                return _result_of_earlier_attempt(existing)
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            verdict = await _check_guards(session, ctx, step, input)
            if verdict is not None:
                return verdict
            assert ctx.customer is not None and ctx.customer.id is not None
            address = ctx.customer.address_for(step.channel)
            assert address is not None
            code = await _discount_code(session, ctx.retailer.id, step, key)
            unsubscribe = _unsubscribe_link(self._settings, ctx, step.channel)
            rendered = await _render(session, ctx, step, code, unsubscribe)
            if unsubscribe is not None:
                rendered = with_unsubscribe_link(rendered, unsubscribe)
            message = Message(
                retailer_id=ctx.retailer.id,
                customer_id=ctx.customer.id,
                workflow_id=input.workflow_id,
                dedupe_key=key,
                channel=step.channel,
                cart_id=ctx.cart.cart_id,
                step_index=step.index,
                template=step.template,
                to_address=address,
                subject=rendered.subject,
                body=rendered.body,
                html=rendered.html,
                discount_code=code,
                status=MessageStatus.SENDING,
                created_at=input.at,
            )
            session.add(message)
            try:
                await session.flush()
            except IntegrityError:
                # Another attempt claimed the key between our read and our insert.
                await session.rollback()
                winner = await message_by_key(session, key)
                assert winner is not None
                return _result_of_earlier_attempt(winner)
            assert message.id is not None
            outgoing = OutgoingMessage(
                message_id=message.id,
                retailer_id=ctx.retailer.id,
                channel=step.channel,
                to=address,
                body=rendered.body,
                subject=rendered.subject,
                html=rendered.html,
                categories=["winback", "cart-recovery", f"step-{step.index}"],
                template=step.template,
                template_data={
                    **_context(ctx, step, code, unsubscribe).as_dict(),
                    "subject": rendered.subject,
                },
                store_name=ctx.retailer.name,
                **_provider_links(
                    self._settings, ctx.retailer.id, ctx.customer.id, step.channel, message.id
                ),
            )
        # The claim is committed: from here on a crash can never lead to a second send.
        return await deliver(self._sessions, self._adapters, outgoing, input.at)

    @activity.defn
    async def check_step(self, input: SendStepInput) -> SendStepResult:
        """The same guards as a send, for a step a person carries out (an agent's call)."""
        async with session_scope(self._sessions) as session:
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            verdict = await _check_guards(session, ctx, input.step, input)
            return verdict or SendStepResult(StepOutcome.READY)

    @activity.defn
    async def record_call(self, input: RecordCallInput) -> SendStepResult:
        """Records an agent's call as a touch; a wrong number is suppressed for texts and calls."""
        key = f"{input.task_id}/call"
        async with session_scope(self._sessions) as session:
            existing = await message_by_key(session, key)
            if existing is not None:
                return SendStepResult(StepOutcome.SENT, "already recorded", message_id=existing.id)
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            phone = ctx.customer.phone if ctx.customer else None
            message = Message(
                retailer_id=ctx.retailer.id,
                customer_id=ctx.customer.id if ctx.customer else None,
                workflow_id=input.workflow_id,
                dedupe_key=key,
                channel="agent_call",
                cart_id=ctx.cart.cart_id,
                step_index=input.step_index,
                to_address=phone,
                body=input.notes,
                reply=input.outcome,
                status=MessageStatus.SENT if input.outcome in REACHED else "not_reached",
                provider=f"agent:{input.agent_id}",
                created_at=input.at,
                sent_at=input.at,
            )
            session.add(message)
            if input.outcome == "wrong_number" and phone:
                for channel in ("sms", "voice"):
                    if not await _is_suppressed(session, ctx.retailer.id, channel, phone):
                        session.add(
                            Suppression(
                                retailer_id=ctx.retailer.id,
                                channel=channel,
                                address=phone,
                                reason="wrong_number",
                            )
                        )
            await session.flush()
            return SendStepResult(StepOutcome.SENT, input.outcome, message_id=message.id)

    @activity.defn
    async def offer_nudge(self, input: OfferNudgeInput) -> OfferNudgeResult:
        """Records the on-site nudge for the storefront to poll, and pushes it to its webhook."""
        key = f"{input.workflow_id}/nudge"
        async with session_scope(self._sessions) as session:
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            message = await message_by_key(session, key)
            if message is None:
                rendered = await _render(session, ctx, input.step, None)
                message = Message(
                    retailer_id=ctx.retailer.id,
                    customer_id=ctx.customer.id if ctx.customer else None,
                    workflow_id=input.workflow_id,
                    dedupe_key=key,
                    channel="onsite",
                    cart_id=ctx.cart.cart_id,
                    step_index=input.step.index,
                    template=input.step.template,
                    body=rendered.body,
                    offer=",".join(input.step.offer),
                    status=MessageStatus.PENDING,
                    created_at=input.at,
                    sent_at=input.at,
                )
                session.add(message)
                await session.flush()
            assert message.id is not None
            webhook_url, secret = ctx.retailer.webhook_url, ctx.retailer.webhook_secret
            payload = {
                "type": "nudge.offered",
                "nudge": {
                    "id": message.id,
                    "cart_id": ctx.cart.cart_id,
                    "reason": input.reason,
                    "message": message.body,
                    "offer": input.step.offer,
                    "created_at": message.created_at.isoformat(),
                },
            }
        if not webhook_url:
            return OfferNudgeResult(message_id=message.id, pushed=False)
        await self._push_webhook(webhook_url, secret, payload)
        return OfferNudgeResult(message_id=message.id, pushed=True)

    async def _push_webhook(self, url: str, secret: str, payload: Mapping[str, object]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:  # checked again now: what the host resolves to may have changed since the save
            target = await check_outbound_url(
                url, allow_loopback=self._settings.allow_loopback_urls
            )
        except UnsafeUrl as err:
            raise ApplicationError(
                f"webhook {url} refused: {err}", type="UnsafeWebhookUrl", non_retryable=True
            ) from err
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "Host": target.host_header,
        }
        client = self._http or httpx.AsyncClient(timeout=10)
        try:
            response = await client.post(
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.server_name},
            )
        except httpx.HTTPError as err:
            raise ApplicationError(
                f"webhook {url} unreachable: {err}", type="WebhookFailed"
            ) from err
        finally:
            if self._http is None:
                await client.aclose()
        if response.status_code >= 300:
            raise ApplicationError(
                f"webhook {url} answered {response.status_code}", type="WebhookFailed"
            )


async def deliver(
    sessions: SessionFactory,
    adapters: Adapters,
    outgoing: OutgoingMessage,
    at: datetime,
) -> SendStepResult:
    """Hands a claimed message to its channel's provider and records the answer.

    A transient failure deletes the claim (the provider surely did not send) and raises a
    retryable error; a permanent one marks the message failed and raises a non-retryable one.
    """
    try:
        adapter = await as_router(adapters).adapter_for(outgoing.retailer_id, outgoing.channel)
    except Exception:
        # Nothing reached a provider (the settings could not be read): release the claim so the
        # retry sends.
        await _release(sessions, outgoing.message_id)
        raise
    try:
        receipt = await adapter.send(outgoing)
    except TransientSendError as err:
        if _last_attempt():
            # An outage longer than the step's retries: recorded on the message, not dropped.
            reason = f"{adapter.name} unavailable after {SEND_ATTEMPTS} attempts: {err}"
            await _mark(
                sessions, outgoing.message_id, MessageStatus.FAILED, adapter.name, None, reason
            )
            raise ApplicationError(reason, type="ProviderUnavailable", non_retryable=True) from err
        await _release(sessions, outgoing.message_id)
        raise ApplicationError(
            f"{adapter.name} unavailable: {err}", type="ProviderUnavailable"
        ) from err
    except PermanentSendError as err:
        await _mark(
            sessions, outgoing.message_id, MessageStatus.FAILED, adapter.name, None, str(err)
        )
        if err.code == TWILIO_OPTED_OUT:
            # Imported here: opt-outs tell workflows, and workflows import these activities.
            from winback.customers.opt_outs import number_opted_out_at_twilio

            async with session_scope(sessions) as session:
                row = await session.get(Message, outgoing.message_id)
                await number_opted_out_at_twilio(
                    session,
                    retailer_id=outgoing.retailer_id,
                    phone=outgoing.to,
                    customer_id=row.customer_id if row else None,
                )
        raise ApplicationError(
            f"{adapter.name} refused the message: {err}",
            type="ProviderRejected",
            non_retryable=True,
        ) from err
    await _mark(
        sessions,
        outgoing.message_id,
        MessageStatus.SENT,
        receipt.provider,
        receipt.provider_message_id,
        None,
        sent_at=at,
    )
    return SendStepResult(outcome=StepOutcome.SENT, message_id=outgoing.message_id)


async def _release(sessions: SessionFactory, message_id: int) -> None:
    async with session_scope(sessions) as session:
        row = await session.get(Message, message_id)
        if row is not None:
            await session.delete(row)


def _last_attempt() -> bool:
    """True on the send activity's last retry (see SEND_RETRY in the cart workflow)."""
    return activity.in_activity() and activity.info().attempt >= SEND_ATTEMPTS


async def _mark(
    sessions: SessionFactory,
    message_id: int,
    status: str,
    provider: str,
    provider_message_id: str | None,
    error: str | None,
    sent_at: datetime | None = None,
) -> None:
    async with session_scope(sessions) as session:
        row = await session.get(Message, message_id)
        assert row is not None
        row.status, row.provider, row.error = status, provider, error
        row.provider_message_id = provider_message_id
        row.sent_at = sent_at
        session.add(row)


async def message_by_key(session: AsyncSession, key: str) -> Message | None:
    return (await session.exec(select(Message).where(Message.dedupe_key == key))).first()


def _result_of_earlier_attempt(message: Message) -> SendStepResult:
    if message.status == MessageStatus.FAILED:
        return SendStepResult(StepOutcome.FAILED, message.error, message_id=message.id)
    reason = "already sent" if message.status == MessageStatus.SENT else "sent before a crash"
    return SendStepResult(StepOutcome.SENT, reason, message_id=message.id)


async def _require_cart(session: AsyncSession, retailer_id: str, cart_id: str) -> CartContext:
    ctx = await load_cart_context(session, retailer_id, cart_id)
    if ctx is None:
        raise ApplicationError(
            f"cart {cart_id} of {retailer_id} does not exist",
            type="UnknownCart",
            non_retryable=True,
        )
    return ctx


async def _check_guards(
    session: AsyncSession, ctx: CartContext, step: StepSpec, input: SendStepInput
) -> SendStepResult | None:
    """None if the step may go now, else why not (stopped, skipped or postponed)."""
    cart, customer = ctx.cart, ctx.customer
    if cart.status in (CartStatus.ORDERED, CartStatus.OPTED_OUT):
        return SendStepResult(StepOutcome.STOPPED, cart.status)
    if step.min_cart_value is not None and cart.value < step.min_cart_value:
        return _skip(f"cart value {cart.value:.2f} below {step.min_cart_value:.2f}")
    if step.max_cart_value is not None and cart.value >= step.max_cart_value:
        return _skip(f"cart value {cart.value:.2f} not below {step.max_cart_value:.2f}")
    address = customer.address_for(step.channel) if customer else None
    if customer is None or address is None:
        return _skip("no email address" if step.channel == "email" else "no phone number")
    if not customer.consents_to(step.channel):
        return _skip(f"no {step.channel} consent")
    if await _is_suppressed(session, ctx.retailer.id, step.channel, address):
        return _skip("address is on the suppression list")
    if step.unless and await _email_engaged(session, ctx, step.unless):
        return _skip(f"skipped: {step.unless.replace('_', ' ')}")
    if step.channel in CALL_CHANNELS:
        zone = recipient_zone(customer.timezone, customer.phone, ctx.retailer.timezone)
        guards = input.guards
        until = quiet_until(
            input.at, zone, parse_clock(guards.quiet_start), parse_clock(guards.quiet_end)
        )
        if until is not None:
            return SendStepResult(
                StepOutcome.POSTPONED,
                f"quiet hours in {zone.key} until {guards.quiet_end}",
                retry_at=until,
            )
    cap = input.guards.cap_max_messages
    if cap is not None:
        # Serialise sends to one customer so two carts cannot both pass the cap (PostgreSQL
        # row lock; SQLite already has a single writer).
        await session.exec(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        since = input.at - timedelta(seconds=input.guards.cap_window_seconds)
        recent = await _messages_since(session, ctx.retailer.id, customer.id, since, input.at)
        if recent >= cap:
            return _skip(f"frequency cap: {recent} messages to this customer already")
    return None


def _provider_links(
    settings: Settings, retailer_id: str, customer_id: int, channel: str, message_id: int
) -> dict[str, str]:
    """The one-click unsubscribe link of an email; the delivery callback of a text or call;
    and, for a call, where "press 1 to talk to someone" goes."""
    if channel == "email":
        return {
            "unsubscribe_url": unsubscribe_url(retailer_id, customer_id, "email", settings=settings)
        }
    base = settings.public_base_url
    kind = "sms-status" if channel == "sms" else "voice-status"
    links = {"status_callback_url": f"{base.rstrip('/')}/v1/webhooks/twilio/{retailer_id}/{kind}"}
    if channel == "voice":
        links["gather_url"] = voice_gather_url(base, retailer_id, message_id)
    return links


def _skip(reason: str) -> SendStepResult:
    return SendStepResult(StepOutcome.SKIPPED, reason)


async def _is_suppressed(
    session: AsyncSession, retailer_id: str, channel: str, address: str
) -> bool:
    channels = ("sms", "voice") if channel in PHONE_CHANNELS else (channel,)
    query = select(Suppression.id).where(
        Suppression.retailer_id == retailer_id,
        col(Suppression.channel).in_((*channels, "all")),
        Suppression.address == address,
    )
    return (await session.exec(query)).first() is not None


async def _email_engaged(session: AsyncSession, ctx: CartContext, unless: str) -> bool:
    wanted = ("opened", "clicked") if unless == "email_opened" else ("clicked",)
    query = select(Message.id).where(
        Message.retailer_id == ctx.retailer.id,
        Message.cart_id == ctx.cart.cart_id,
        Message.channel == "email",
        col(Message.status).in_(wanted),
    )
    return (await session.exec(query)).first() is not None


async def _messages_since(
    session: AsyncSession,
    retailer_id: str,
    customer_id: int | None,
    since: datetime,
    until: datetime,
) -> int:
    query = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.retailer_id == retailer_id,
            Message.customer_id == customer_id,
            col(Message.channel).in_(("email", "sms", "voice")),
            col(Message.status).in_(COUNTED_STATUSES),
            col(Message.created_at) > since,
            col(Message.created_at) <= until,
        )
    )
    return int((await session.exec(query)).one())


async def _discount_code(
    session: AsyncSession, retailer_id: str, step: StepSpec, key: str
) -> str | None:
    """A fixed code, or a pool code drawn once for this key (the same code on a retry)."""
    if step.discount_code:
        return step.discount_code
    if not step.discount_pool:
        return None
    base = select(DiscountCode).where(
        DiscountCode.retailer_id == retailer_id, DiscountCode.pool == step.discount_pool
    )
    held = (await session.exec(base.where(DiscountCode.assigned_key == key))).first()
    if held is not None:
        return held.code
    free = (
        await session.exec(
            base.where(col(DiscountCode.assigned_key).is_(None))
            .order_by(col(DiscountCode.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()
    if free is None:
        log.warning("discount pool %s of %s is empty", step.discount_pool, retailer_id)
        return None
    free.assigned_key, free.assigned_at = key, utcnow()
    session.add(free)
    return free.code


def _unsubscribe_link(settings: Settings, ctx: CartContext, channel: str) -> str | None:
    """An email's one-click unsubscribe link, shown in its body and its headers."""
    if channel != "email" or ctx.customer is None or ctx.customer.id is None:
        return None
    return unsubscribe_url(ctx.retailer.id, ctx.customer.id, "email", settings=settings)


def _context(
    ctx: CartContext,
    step: StepSpec,
    discount_code: str | None,
    unsubscribe: str | None = None,
) -> MessageContext:
    return MessageContext(
        shopper_name=ctx.customer.name if ctx.customer else None,
        items=ctx.cart.items,
        total=ctx.cart.value,
        currency=ctx.cart.currency,
        cart_url=ctx.cart_url,
        store_name=ctx.retailer.name,
        discount_code=discount_code,
        offer=step.offer,
        unsubscribe_url=unsubscribe,
    )


async def _render(
    session: AsyncSession,
    ctx: CartContext,
    step: StepSpec,
    discount_code: str | None,
    unsubscribe: str | None = None,
) -> RenderedMessage:
    stored = (
        await session.exec(
            select(MessageTemplate).where(
                MessageTemplate.retailer_id == ctx.retailer.id,
                MessageTemplate.name == step.template,
            )
        )
    ).first()
    source = (
        TemplateSource(stored.channel, stored.body, stored.subject, stored.html)
        if stored is not None
        else DEFAULT_TEMPLATES.get(step.template)
    )
    if source is None:
        raise ApplicationError(
            f"template {step.template!r} does not exist", type="TemplateError", non_retryable=True
        )
    try:
        return await template_runner().render(
            source, _context(ctx, step, discount_code, unsubscribe)
        )
    except RenderTimeout as err:  # a loaded machine, most likely: the retry may render it
        raise ApplicationError(
            f"template {step.template!r}: {err}", type="TemplateTimeout"
        ) from err
    except TemplateError as err:
        raise ApplicationError(
            f"template {step.template!r} failed: {err}", type="TemplateError", non_retryable=True
        ) from err
