"""Sending a cadence step and offering the on-site nudge.

Every guard is checked here, right before the send, against the database as it is now: the
cart's status, the step's conditions, the address and consent for the channel, the suppression
list, quiet hours in the recipient's zone, and the per-customer frequency cap across carts.

Effectively once: a message's ``dedupe_key`` (``<workflow id>/step-<n>``) is claimed with a
unique row before the provider is called, and a retried activity that finds the row sent does
not send again. The outbox writes the row sent in the claim's own transaction. If a worker dies
between the claim and the provider's answer, the activity's heartbeat stops, Temporal retries it
within seconds, and the retry settles the row still ``sending`` from the provider's side
(``winback.messaging.reconcile``): found there, it is marked sent; not there, it is sent again;
the verdict is recorded on the message's ``resolution``.

The cadence's first follow-up also settles the abandonment (``SendStepInput.abandon_after_seconds``,
``winback.carts.abandonment``): the workflow does not re-read the cart at the deadline, so the
send marks it abandoned, backdated, or answers ``not_due`` if the shopper was active since.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

import httpx
from jinja2 import TemplateError
from sqlalchemy import exists, func, insert, literal
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from winback.carts.abandonment import judge_abandonment
from winback.carts.context import CartContext, load_cart_context
from winback.carts.discount_models import DiscountCode
from winback.carts.holdout import is_held_out
from winback.carts.models import Cart
from winback.carts.transitions import is_final
from winback.customers.models import Customer
from winback.messaging.channels import (
    ChannelAdapter,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
)
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.router import Adapters, as_router
from winback.messaging.channels.twilio_channels import voice_gather_url
from winback.messaging.models import Message, Suppression
from winback.messaging.quiet_hours import parse_clock, quiet_until, recipient_zone
from winback.messaging.reconcile import retake, settle
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
from winback.platform.crypto import address_digest
from winback.platform.db import SessionFactory, lock_rows, session_scope, sqlite_writer
from winback.platform.outbound_urls import UnsafeUrl, check_outbound_url
from winback.platform.settings import Settings
from winback.platform.signing import SIGNATURE_HEADER, sign
from winback.tasks.mirror import close_row
from workflows.carts.types import (
    SEND_ATTEMPTS,
    OfferNudgeInput,
    OfferNudgeResult,
    RecordCallInput,
    SendStepInput,
    SendStepResult,
    StepSpec,
)
from workflows.errors import ErrorType
from workflows.vocabulary import (
    PHONE_CHANNELS,
    PROVIDER_CHANNELS,
    CartStatus,
    MessageStatus,
    StepOutcome,
)

log = logging.getLogger(__name__)

CALL_CHANNELS = PHONE_CHANNELS  # the channels quiet hours apply to
REACHED = ("reached_purchased", "reached_not_interested", "voicemail")
COUNTED_STATUSES = MessageStatus.WENT_OUT
HELD_OUT_REASON = "held_out"  # the step's outcome reason for a cart in the holdout group
TWILIO_OPTED_OUT = "21610"  # Twilio refused: the number texted STOP to our sender


HEARTBEAT_EVERY = 1.0  # seconds; the workflow's heartbeat timeout is a few of these


_BEATING: ContextVar[bool] = ContextVar("winback_heartbeating", default=False)


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY) -> AsyncIterator[None]:
    """Heartbeats while the body runs, so a killed worker's attempt is timed out (and retried)
    within the heartbeat timeout instead of the whole start-to-close timeout. Nested uses (an
    activity that beats around ``notify``, which beats too) share the outer beat."""
    if not activity.in_activity() or _BEATING.get():
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    token = _BEATING.set(True)
    try:
        yield
    finally:
        _BEATING.reset(token)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _shopper_left(ctx: CartContext, idle_since: datetime | None) -> bool:
    """No on-site help for a shopper who is not on the site any more: the cart is abandoned (the
    sweep saw it idle), or its last activity is older than ``idle_since`` (what the workflow
    asked). A purchase or opt-out is the workflow's to act on (its signal stops it), as before."""
    if idle_since is None:
        return False
    cart = ctx.cart
    if cart.status == CartStatus.ABANDONED:
        return True
    return cart.last_activity_at is not None and cart.last_activity_at <= idle_since


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
        async with heartbeating():
            abandoned_at, not_due = await self._abandonment(input)
            result = not_due or await self._send_step(input)
        _count_send(input.step.channel, str(result.outcome))
        return dataclasses.replace(result, abandoned_at=abandoned_at)

    async def _abandonment(
        self, input: SendStepInput
    ) -> tuple[datetime | None, SendStepResult | None]:
        """For a step sent before the workflow knows the abandonment: marks the cart abandoned
        if the shopper has been idle long enough (committed on its own: a retry finds it so),
        and says ``not_due`` if the step is not due yet. (None, None) when not asked."""
        if input.abandon_after_seconds is None:
            return None, None
        async with session_scope(self._sessions) as session:
            ctx = await _require_cart(session, input.retailer_id, input.cart_id, for_update=True)
            verdict = await judge_abandonment(
                session,
                ctx.cart,
                abandon_after=timedelta(seconds=input.abandon_after_seconds),
                grace=timedelta(seconds=input.abandon_grace_seconds),
                delay=timedelta(seconds=input.step.delay_seconds),
                at=input.at,
            )
        grace = timedelta(seconds=input.abandon_grace_seconds)
        if verdict.due_at is not None and verdict.due_at - grace > input.at:
            why = "abandoned later than it looked" if verdict.abandoned_at else "shopper active"
            return verdict.abandoned_at, SendStepResult(
                StepOutcome.NOT_DUE,
                f"{why}: due at {verdict.due_at:%Y-%m-%d %H:%M}",
                retry_at=verdict.due_at,
            )
        return verdict.abandoned_at, None

    async def _send_step(self, input: SendStepInput) -> SendStepResult:
        step = input.step
        key = dedupe_key(input.workflow_id, step.index, input.key_suffix)
        async with session_scope(self._sessions) as session:
            existing = await message_by_key(session, key)
            if existing is not None and existing.status != MessageStatus.SENDING:
                return _result_of_earlier_attempt(existing)
            # The cart's row stays locked until the claim commits (PostgreSQL): an order placed
            # meanwhile waits for it, then the next step's guards see it.
            ctx = await _require_cart(session, input.retailer_id, input.cart_id, for_update=True)
            if existing is not None:
                adapter = await self._adapters.adapter_for(ctx.retailer.id, step.channel)
                outgoing = self._outgoing(ctx, step, existing)
                resumed = await self._settle(session, ctx, adapter, existing, outgoing)
                if resumed is not None:
                    return resumed
            else:
                verdict = await _check_guards(session, ctx, step, input, self._settings)
                if verdict is not None:
                    return verdict
                if is_held_out(ctx.cart):
                    return await _hold_out(session, ctx, step, input, key)
                # Resolved before the claim: a failure here leaves nothing claimed.
                adapter = await self._adapters.adapter_for(ctx.retailer.id, step.channel)
                claimed = await self._claim(session, ctx, step, input, key, adapter)
                if isinstance(claimed, SendStepResult):
                    return claimed
                outgoing = self._outgoing(ctx, step, claimed)
        # The claim is committed: a crash from here on is settled by the retry (reconcile).
        return await deliver(self._sessions, self._adapters, outgoing, input.at, adapter=adapter)

    async def _claim(
        self,
        session: AsyncSession,
        ctx: CartContext,
        step: StepSpec,
        input: SendStepInput,
        key: str,
        adapter: ChannelAdapter,
    ) -> Message | SendStepResult:
        """Writes the message row that claims ``key``. For the outbox that row is the
        delivery, so it is written sent in this same transaction: no window at all."""
        assert ctx.customer is not None and ctx.customer.id is not None
        address = ctx.customer.address_for(step.channel)
        assert address is not None
        code = await _discount_code(session, ctx.retailer.id, step, key)
        unsubscribe = _unsubscribe_link(self._settings, ctx, step.channel)
        rendered = await _render(session, ctx, step, code, unsubscribe)
        if unsubscribe is not None:  # every marketing email shows its unsubscribe link
            rendered = with_unsubscribe_link(rendered, unsubscribe)
        in_outbox = isinstance(adapter, OutboxAdapter)
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
            status=MessageStatus.SENT if in_outbox else MessageStatus.SENDING,
            provider=adapter.name if in_outbox else None,
            created_at=input.at,
            sent_at=input.at if in_outbox else None,
            claimed_at=utcnow(),
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
        if in_outbox:
            message.provider_message_id = f"outbox-{message.id}"
            session.add(message)
            return SendStepResult(outcome=StepOutcome.SENT, message_id=message.id)
        return message

    async def _settle(
        self,
        session: AsyncSession,
        ctx: CartContext,
        adapter: ChannelAdapter,
        row: Message,
        outgoing: OutgoingMessage,
    ) -> SendStepResult | None:
        """An earlier attempt claimed this step and never recorded the provider's answer (its
        worker died). Decides from the provider's side; None means: send it again now."""
        # Bought or opted out since the crashed attempt: better one lost reminder than a
        # reminder after the purchase.
        stopped = ctx.cart.status if is_final(ctx.cart.status) else None
        return await settle_stale_claim(
            session,
            adapter=adapter,
            row=row,
            outgoing=outgoing,
            event_grace=timedelta(seconds=self._settings.send_event_grace_seconds),
            stopped_by=stopped,
        )

    def _outgoing(self, ctx: CartContext, step: StepSpec, message: Message) -> OutgoingMessage:
        assert message.id is not None and ctx.customer is not None
        assert ctx.customer.id is not None and message.to_address is not None
        return OutgoingMessage(
            message_id=message.id,
            retailer_id=ctx.retailer.id,
            channel=step.channel,
            to=message.to_address,
            body=message.body,
            subject=message.subject,
            html=message.html,
            categories=["winback", "cart-recovery", f"step-{step.index}"],
            template=step.template,
            template_data={
                **_context(
                    ctx,
                    step,
                    message.discount_code,
                    _unsubscribe_link(self._settings, ctx, step.channel),
                ).as_dict(),
                "subject": message.subject,
            },
            store_name=ctx.retailer.name,
            **_provider_links(
                self._settings, ctx.retailer.id, ctx.customer.id, step.channel, message.id
            ),
        )

    @activity.defn
    async def check_step(self, input: SendStepInput) -> SendStepResult:
        """The same guards as a send, for a step a person carries out (an agent's call)."""
        async with heartbeating():
            abandoned_at, not_due = await self._abandonment(input)
            result = not_due or await self._check_step(input)
        return dataclasses.replace(result, abandoned_at=abandoned_at)

    async def _check_step(self, input: SendStepInput) -> SendStepResult:
        async with session_scope(self._sessions) as session:
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            verdict = await _check_guards(session, ctx, input.step, input, self._settings)
            if verdict is None and is_held_out(ctx.cart):
                # No task for an agent: the call that would have been asked for is recorded.
                key = dedupe_key(input.workflow_id, input.step.index, input.key_suffix)
                existing = await message_by_key(session, key)
                if existing is not None:
                    return _result_of_earlier_attempt(existing)
                return await _hold_out(session, ctx, input.step, input, key)
            return verdict or SendStepResult(StepOutcome.READY)

    @activity.defn
    async def record_call(self, input: RecordCallInput) -> SendStepResult:
        """Records an agent's call as a touch; a wrong number is suppressed for texts and calls.
        With ``input.close`` (``CartRecoveryV4`` runs it as a local activity in place of
        ``close_task``) it writes the call task's final state to its inbox row in the same
        transaction. The transaction starts with its write and holds the writer lock for two
        statements and the commit: it runs inside the workflow task that answers the agent."""
        key = f"{input.task_id}/call"
        async with session_scope(self._sessions) as session:
            async with sqlite_writer(session):
                if input.close is not None:
                    await close_row(session, input.close)
                call = await _insert_call(session, input, key)
                if call is not None and input.outcome == "wrong_number" and call.phone:
                    await _suppress_number(session, input.retailer_id, call.phone)
                await session.commit()
            if call is None:  # recorded by an earlier attempt, or no such cart
                earlier = await message_by_key(session, key)
                if earlier is None:
                    raise ApplicationError(
                        f"cart {input.cart_id} of {input.retailer_id} does not exist",
                        type=ErrorType.UNKNOWN_CART,
                        non_retryable=True,
                    )
                return SendStepResult(StepOutcome.SENT, "already recorded", message_id=earlier.id)
        return SendStepResult(StepOutcome.SENT, input.outcome, message_id=call.id)

    @activity.defn
    async def offer_nudge(self, input: OfferNudgeInput) -> OfferNudgeResult:
        """Records the on-site nudge for the storefront to poll, and pushes it to its webhook."""
        key = f"{input.workflow_id}/nudge"
        async with session_scope(self._sessions) as session:
            ctx = await _require_cart(session, input.retailer_id, input.cart_id)
            message = await message_by_key(session, key)
            held_out = is_held_out(ctx.cart)
            if message is None and _shopper_left(ctx, input.unless_idle_since):
                return OfferNudgeResult(message_id=None)
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
                    # Held out: recorded, never shown (the storefront polls only pending ones)
                    # and never pushed. A true holdout gets no touch at all, on site included.
                    status=MessageStatus.HELD_OUT if held_out else MessageStatus.PENDING,
                    created_at=input.at,
                    sent_at=None if held_out else input.at,
                )
                session.add(message)
                await session.flush()
            assert message.id is not None
            if message.status == MessageStatus.HELD_OUT:
                return OfferNudgeResult(message_id=message.id, pushed=False)
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
                f"webhook {url} unreachable: {err}", type=ErrorType.WEBHOOK_FAILED
            ) from err
        finally:
            if self._http is None:
                await client.aclose()
        if response.status_code >= 300:
            raise ApplicationError(
                f"webhook {url} answered {response.status_code}", type=ErrorType.WEBHOOK_FAILED
            )


async def settle_stale_claim(
    session: AsyncSession,
    *,
    adapter: ChannelAdapter,
    row: Message,
    outgoing: OutgoingMessage,
    event_grace: timedelta,
    stopped_by: str | None = None,
) -> SendStepResult | None:
    """Settles a claim an earlier attempt left ``sending`` (its worker died between the claim
    and the mark), from the provider's side: found there, the row is marked sent and that is
    the result; not there, the claim is retaken and None means "send it again now". Too young
    to judge, or retaken by another attempt meanwhile: a retryable ``SendUnsettled``.

    ``stopped_by`` (a cart that is bought or opted out) turns a resend into a failed row with
    that reason: shared by the cadence's sends and the notifications, so a killed worker
    strands neither in ``sending``."""
    now = utcnow()
    try:
        verdict = await settle(
            session,
            adapter=adapter,
            row=row,
            outgoing=outgoing,
            now=now,
            last_attempt=_last_attempt(),
            event_grace=event_grace,
        )
    except TransientSendError as err:
        raise ApplicationError(
            f"{adapter.name} could not be asked about an interrupted send: {err}",
            type=ErrorType.SEND_UNSETTLED,
        ) from err
    if verdict.action == "wait":
        raise ApplicationError(verdict.reason, type=ErrorType.SEND_UNSETTLED)
    if verdict.action == "sent":
        receipt = verdict.receipt
        row.status, row.resolution = MessageStatus.SENT, verdict.reason
        row.provider = receipt.provider if receipt else adapter.name
        row.provider_message_id = receipt.provider_message_id if receipt else None
        row.sent_at = row.created_at
        session.add(row)
        log.info("message %s settled: %s", row.id, verdict.reason)
        return SendStepResult(StepOutcome.SENT, verdict.reason, message_id=row.id)
    if stopped_by is not None:
        reason = f"not sent again: the cart is {stopped_by} since a crashed attempt"
        row.status, row.resolution, row.error = MessageStatus.FAILED, reason, reason
        session.add(row)
        return SendStepResult(StepOutcome.STOPPED, stopped_by, message_id=row.id)
    if not await retake(session, row=row, now=now, reason=verdict.reason):
        raise ApplicationError(
            "another attempt is settling this send", type=ErrorType.SEND_UNSETTLED
        )
    log.warning("message %s: %s", row.id, verdict.reason)
    return None


async def deliver(
    sessions: SessionFactory,
    adapters: Adapters,
    outgoing: OutgoingMessage,
    at: datetime,
    *,
    adapter: ChannelAdapter | None = None,
) -> SendStepResult:
    """Hands a claimed message to its channel's provider and records the answer.

    A transient failure deletes the claim (the provider surely did not send) and raises a
    retryable error; one after which the provider may have the message (a timeout) keeps the
    claim for the retry to settle; a permanent one marks the message failed and raises a
    non-retryable one.
    """
    if adapter is None:
        try:
            adapter = await as_router(adapters).adapter_for(outgoing.retailer_id, outgoing.channel)
        except Exception:
            # Nothing reached a provider (the settings could not be read): release the claim
            # so the retry sends.
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
            raise ApplicationError(
                reason, type=ErrorType.PROVIDER_UNAVAILABLE, non_retryable=True
            ) from err
        if not err.maybe_sent:
            await _release(sessions, outgoing.message_id)
        raise ApplicationError(
            f"{adapter.name} unavailable: {err}", type=ErrorType.PROVIDER_UNAVAILABLE
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
            type=ErrorType.PROVIDER_REJECTED,
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
    if message.status == MessageStatus.HELD_OUT:
        return SendStepResult(StepOutcome.SKIPPED, HELD_OUT_REASON, message_id=message.id)
    if message.status == MessageStatus.FAILED:
        return SendStepResult(StepOutcome.FAILED, message.error, message_id=message.id)
    reason = "already sent" if message.status == MessageStatus.SENT else "sent before a crash"
    return SendStepResult(StepOutcome.SENT, reason, message_id=message.id)


async def _hold_out(
    session: AsyncSession, ctx: CartContext, step: StepSpec, input: SendStepInput, key: str
) -> SendStepResult:
    """Records what this held-out cart's step would have sent, when, on which channel, and
    sends nothing. A fixed discount code is shown; a pool's code is not drawn for nobody."""
    assert ctx.customer is not None and ctx.customer.id is not None
    body, subject = "", None
    if step.channel != "agent_call":
        rendered = await _render(session, ctx, step, step.discount_code)
        body, subject = rendered.body, rendered.subject
    message = Message(
        retailer_id=ctx.retailer.id,
        customer_id=ctx.customer.id,
        workflow_id=input.workflow_id,
        dedupe_key=key,
        channel=step.channel,
        cart_id=ctx.cart.cart_id,
        step_index=step.index,
        template=step.template or None,
        to_address=ctx.customer.address_for(step.channel),
        subject=subject,
        body=body,
        discount_code=step.discount_code,
        status=MessageStatus.HELD_OUT,
        resolution="held out: the cart is in the cadence's holdout group",
        created_at=input.at,
        claimed_at=utcnow(),
    )
    session.add(message)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent attempt recorded it first
        await session.rollback()
        winner = await message_by_key(session, key)
        assert winner is not None
        return _result_of_earlier_attempt(winner)
    return SendStepResult(StepOutcome.SKIPPED, HELD_OUT_REASON, message_id=message.id)


@dataclasses.dataclass(frozen=True)
class _Call:
    id: int
    phone: str | None


async def _insert_call(session: AsyncSession, input: RecordCallInput, key: str) -> _Call | None:
    """The call as the step's message, its customer and number taken from the cart in the
    same statement. None, writing nothing, if an earlier attempt recorded it or there is no
    such cart."""
    values: dict[str, Any] = {
        "retailer_id": input.retailer_id,
        "workflow_id": input.workflow_id,
        "dedupe_key": key,
        "channel": "agent_call",
        "cart_id": input.cart_id,
        "step_index": input.step_index,
        "body": input.notes,
        "reply": input.outcome,
        "status": MessageStatus.SENT if input.outcome in REACHED else "not_reached",
        "provider": f"agent:{input.agent_id}",
        "created_at": input.at,
        "sent_at": input.at,
    }
    columns = Message.__table__.c  # type: ignore[attr-defined]
    source = (
        sa_select(
            *(literal(value, columns[name].type) for name, value in values.items()),
            col(Cart.customer_id),
            col(Customer.phone),
        )
        .outerjoin(Customer, col(Customer.id) == col(Cart.customer_id))
        .where(
            col(Cart.retailer_id) == input.retailer_id,
            col(Cart.cart_id) == input.cart_id,
            ~exists().where(col(Message.dedupe_key) == key),
        )
    )
    statement = (
        insert(Message)
        .from_select([*values, "customer_id", "to_address"], source)
        .returning(col(Message.id), col(Message.to_address))
    )
    row = (await (await session.connection()).execute(statement)).first()
    if row is None:
        return None
    message_id, phone = row
    assert message_id is not None  # the key the insert just gave it
    return _Call(id=message_id, phone=phone)


async def _suppress_number(session: AsyncSession, retailer_id: str, phone: str) -> None:
    """A wrong number: no more texts or calls to it (one entry covers both, see
    ``_is_suppressed``)."""
    for channel in ("sms", "voice"):
        if not await _is_suppressed(session, retailer_id, channel, phone):
            session.add(
                Suppression(
                    retailer_id=retailer_id, channel=channel, address=phone, reason="wrong_number"
                )
            )


async def _require_cart(
    session: AsyncSession, retailer_id: str, cart_id: str, *, for_update: bool = False
) -> CartContext:
    ctx = await load_cart_context(session, retailer_id, cart_id, for_update=for_update)
    if ctx is None:
        raise ApplicationError(
            f"cart {cart_id} of {retailer_id} does not exist",
            type=ErrorType.UNKNOWN_CART,
            non_retryable=True,
        )
    return ctx


async def _check_guards(
    session: AsyncSession,
    ctx: CartContext,
    step: StepSpec,
    input: SendStepInput,
    settings: Settings,
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
    if await _is_suppressed(
        session, ctx.retailer.id, step.channel, address, address_digest(settings, address)
    ):
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
        assert customer.id is not None
        await _lock_customer(session, customer.id)
        since = input.at - timedelta(seconds=input.guards.cap_window_seconds)
        recent = await _messages_since(session, ctx.retailer.id, customer.id, since)
        if recent >= cap:
            return _skip(f"frequency cap: {recent} messages to this customer already")
    return None


async def _lock_customer(session: AsyncSession, customer_id: int) -> None:
    """Serialises the sends to one customer until this transaction commits, so that two carts
    cannot both count the messages under the frequency cap and both claim a send (on SQLite,
    where a count read before the claim's insert saw nothing of a concurrent claim, both went:
    one run in two of ``test_frequency_cap_holds_across_carts_of_one_shopper``)."""
    await lock_rows(session, Customer, col(Customer.id) == customer_id)


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
    session: AsyncSession, retailer_id: str, channel: str, address: str, digest: str | None = None
) -> bool:
    """On the list for the channel (or all channels), by the address itself or by the digest
    that is all an erased shopper's entry keeps of it."""
    channels = ("sms", "voice") if channel in PHONE_CHANNELS else (channel,)
    addresses = (address, digest) if digest else (address,)
    query = select(Suppression.id).where(
        Suppression.retailer_id == retailer_id,
        col(Suppression.channel).in_((*channels, "all")),
        col(Suppression.address).in_(addresses),
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
    session: AsyncSession, retailer_id: str, customer_id: int | None, since: datetime
) -> int:
    """The messages claimed for the customer after ``since``, under the frequency cap. Those
    claimed with a later time than this send's own count too: another cart's step, scheduled
    a moment after this one, may have taken the customer's lock first (each step's time is its
    workflow's, not the clock's), and its message is as much inside the window. Counting only
    up to this send's time let two carts' sends both pass a cap of one."""
    query = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.retailer_id == retailer_id,
            Message.customer_id == customer_id,
            col(Message.channel).in_(PROVIDER_CHANNELS),
            col(Message.status).in_(COUNTED_STATUSES),
            col(Message.created_at) > since,
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
            f"template {step.template!r} does not exist",
            type=ErrorType.TEMPLATE_ERROR,
            non_retryable=True,
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
            f"template {step.template!r} failed: {err}",
            type=ErrorType.TEMPLATE_ERROR,
            non_retryable=True,
        ) from err


def _count_send(channel: str, outcome: str) -> None:
    """``winback_send_outcomes`` on the worker's Prometheus endpoint (the SDK runtime's, :9464
    by default): each step's outcome per channel (sent, stopped, failed, skipped...)."""
    if activity.in_activity():
        meter = activity.metric_meter()
        meter.create_counter(
            "winback_send_outcomes", "Cart step sends by channel and outcome"
        ).with_additional_attributes({"channel": channel, "outcome": outcome}).add(1)
