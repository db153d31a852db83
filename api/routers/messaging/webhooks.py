"""Webhooks in from SendGrid and Twilio. Each request's signature is checked before anything is
read; a bad or missing one is refused with 403 and changes nothing.

- SendGrid Event Webhook: ECDSA P-256 over ``timestamp + body`` (the signed-webhook public key),
  timestamps older than five minutes refused so a captured request cannot be replayed later.
- Twilio: HMAC-SHA1 of the public URL plus the sorted form (``X-Twilio-Signature``) with the
  account's auth token. Twilio signs no timestamp: a replay is caught by the stored event id.

Each retailer's webhooks are verified with its own credentials when its provider settings hold
them (its SendGrid webhook public key; its Twilio auth token), else with the process-wide ones.
"""

import binascii
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from cryptography.exceptions import UnsupportedAlgorithm
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from api.deps import SessionDep, SettingsDep, TemporalClientDep
from winback.customers.opt_outs import tell_workflows
from winback.feedback.survey_sms import answer_by_sms
from winback.messaging.provider_events import (
    HELP_WORDS,
    START_WORDS,
    STOP_WORDS,
    Outcome,
    apply_sendgrid_events,
    apply_twilio_inbound,
    apply_twilio_sms_status,
    apply_twilio_voice_gather,
    apply_twilio_voice_status,
    keyword,
)
from winback.platform.crypto import decrypt
from winback.platform.db import retry_on_conflict
from winback.platform.sendgrid_keys import load_sendgrid_public_key
from winback.platform.settings import Settings
from winback.retailers.models import Retailer
from winback.retailers.provider_settings import ProviderSettings

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
MAX_AGE_SECONDS = 300
TWIML = "application/xml"


class WebhookAccepted(BaseModel):
    stored: int
    duplicates: int


def _refuse(why: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, why)


async def _provider_settings(session: SessionDep, retailer_id: str) -> ProviderSettings | None:
    return await session.get(ProviderSettings, retailer_id)


def sendgrid_public_key(settings: Settings, row: ProviderSettings | None) -> str | None:
    """The Event Webhook's verification key: the retailer's own, else the process-wide one."""
    if row is not None and row.sendgrid_webhook_public_key:
        return row.sendgrid_webhook_public_key
    return settings.sendgrid_webhook_public_key


def twilio_auth_token(settings: Settings, row: ProviderSettings | None) -> str | None:
    """What Twilio signs this retailer's webhooks with: its account's auth token (decrypted),
    else the process-wide one. Twilio never signs with an API key secret, so a retailer on its
    own account without an auth token has nothing to verify with: None, and a 403."""
    if row is not None and row.twilio_auth_token_enc:
        return decrypt(settings, row.twilio_auth_token_enc)
    if row is not None and row.twilio_account_sid:
        return None
    token = settings.twilio_auth_token
    return token.get_secret_value() if token is not None else None


def verify_sendgrid(
    settings: Settings,
    row: ProviderSettings | None,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
) -> None:
    key = sendgrid_public_key(settings, row)
    if not key:
        raise _refuse("SendGrid webhook verification key is not configured")
    if not signature or not timestamp:
        raise _refuse(f"missing {SENDGRID_SIGNATURE} or {SENDGRID_TIMESTAMP} header")
    try:
        age = time.time() - int(timestamp)
    except ValueError:
        raise _refuse("malformed timestamp") from None
    if abs(age) > MAX_AGE_SECONDS:
        raise _refuse("timestamp too old or in the future")
    try:
        public_key = load_sendgrid_public_key(key)
        valid = EventWebhook().verify_signature(
            body.decode("utf-8"), signature, timestamp, public_key
        )
    except (ValueError, binascii.Error, UnsupportedAlgorithm):  # undecodable or not DER
        valid = False
    if not valid:
        raise _refuse("bad signature")


def verify_twilio(
    settings: Settings, row: ProviderSettings | None, request: Request, form: dict[str, str]
) -> None:
    token = twilio_auth_token(settings, row)
    if not token:
        if row is not None and row.twilio_account_sid:
            raise _refuse(
                "the retailer's Twilio auth token is not set: Twilio signs webhooks with it"
            )
        raise _refuse("Twilio auth token is not configured")
    signature = request.headers.get(TWILIO_SIGNATURE)
    if not signature:
        raise _refuse(f"missing {TWILIO_SIGNATURE} header")
    # Twilio signs the URL it called: ours as the public sees it, not as the proxy forwards it.
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token).validate(url, form, signature):
        raise _refuse("bad signature")


async def _twilio_form(request: Request) -> dict[str, str]:
    body = await request.body()
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise _refuse("unreadable form") from None


async def _retailer(session: SessionDep, retailer_id: str) -> Retailer:
    retailer = await session.get(Retailer, retailer_id)
    if retailer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown retailer")
    return retailer


@dataclass
class TwilioCall:
    """A Twilio webhook request whose signature checked out, with its retailer."""

    form: dict[str, str]
    retailer: Retailer
    own_settings: ProviderSettings | None


RetailerIdPath = Annotated[str, Path(max_length=40, description="The retailer's id.")]


async def verified_twilio(
    retailer_id: RetailerIdPath, request: Request, session: SessionDep, settings: SettingsDep
) -> TwilioCall:
    """Every Twilio webhook: the form, verified with the retailer's token (else the operator's)."""
    form = await _twilio_form(request)
    own = await _provider_settings(session, retailer_id)
    verify_twilio(settings, own, request, form)
    return TwilioCall(form, await _retailer(session, retailer_id), own)


TwilioDep = Annotated[TwilioCall, Depends(verified_twilio)]


async def _finish(
    session: SessionDep,
    client: TemporalClientDep,
    settings: Settings,
    retailer: Retailer,
    outcome: Outcome,
) -> None:
    await session.commit()
    await tell_workflows(
        session, client, task_queue=settings.task_queue, retailer=retailer, carts=outcome.carts
    )


@router.post("/sendgrid/{retailer_id}", response_model=WebhookAccepted)
async def sendgrid_events(
    retailer_id: RetailerIdPath,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> WebhookAccepted:
    """SendGrid Event Webhook (signed): delivered, open, click, bounce, dropped, spam report,
    unsubscribe, group unsubscribe. Each event is stored once; opt-outs stop the emails."""
    body = await request.body()
    verify_sendgrid(
        settings,
        await _provider_settings(session, retailer_id),
        body,
        request.headers.get(SENDGRID_SIGNATURE),
        request.headers.get(SENDGRID_TIMESTAMP),
    )
    retailer = await _retailer(session, retailer_id)
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body is not JSON") from None
    if not isinstance(parsed, list) or not all(isinstance(e, dict) for e in parsed):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be a JSON array of events")
    outcome = await retry_on_conflict(
        session,
        lambda: apply_sendgrid_events(session, retailer_id=retailer.id, events=parsed),
        keep=[retailer],
    )
    await _finish(session, client, settings, retailer, outcome)
    return WebhookAccepted(stored=outcome.stored, duplicates=outcome.duplicates)


@router.post("/twilio/{retailer_id}/sms-status", response_model=WebhookAccepted)
async def twilio_sms_status(
    twilio: TwilioDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> WebhookAccepted:
    """Twilio message status callback (the ``StatusCallback`` of each SMS we send)."""
    form, retailer = twilio.form, twilio.retailer
    outcome = await retry_on_conflict(
        session,
        lambda: apply_twilio_sms_status(session, retailer_id=retailer.id, form=form),
        keep=[retailer],
    )
    await _finish(session, client, settings, retailer, outcome)
    return WebhookAccepted(stored=outcome.stored, duplicates=outcome.duplicates)


@router.post("/twilio/{retailer_id}/voice-status", response_model=WebhookAccepted)
async def twilio_voice_status(
    twilio: TwilioDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> WebhookAccepted:
    """Twilio call status callback: answered, voicemail (machine detection), busy, no answer."""
    form, retailer = twilio.form, twilio.retailer
    outcome = await retry_on_conflict(
        session,
        lambda: apply_twilio_voice_status(session, retailer_id=retailer.id, form=form),
        keep=[retailer],
    )
    await _finish(session, client, settings, retailer, outcome)
    return WebhookAccepted(stored=outcome.stored, duplicates=outcome.duplicates)


@router.post("/twilio/{retailer_id}/sms-inbound", response_class=Response)
async def twilio_sms_inbound(
    twilio: TwilioDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
) -> Response:
    """A text from a shopper. STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT:
    texts and calls stop; START, UNSTOP, YES: texts resume; HELP: the store's help text;
    a score ("9", "10 gracias") from a number Winback texted a survey to: that survey's answer;
    anything else is kept as a note on the shopper's latest cart. Answers with TwiML."""
    form, retailer, own = twilio.form, twilio.retailer, twilio.own_settings
    body = form.get("Body") or ""
    if keyword(body) not in STOP_WORDS | START_WORDS | HELP_WORDS:  # opt-outs always win
        sender = (form.get("From") or "").strip()
        survey_reply = await answer_by_sms(
            session, client, settings, retailer=retailer, sender=sender, body=body
        )
        if survey_reply is not None:
            answered = MessagingResponse()
            answered.message(survey_reply)
            return Response(content=str(answered), media_type=TWIML)
    help_text = own.sms_help_text if own else None
    reply_opens_task = bool(own and own.sms_reply_opens_task)
    # Twilio does not resend an inbound text its webhook failed: a STOP answered 503 after a
    # deadlock with a worker writing the same cart (PostgreSQL picks one loser) would be lost.
    outcome = await retry_on_conflict(
        session,
        lambda: apply_twilio_inbound(
            session,
            retailer_id=retailer.id,
            store_name=retailer.name,
            form=form,
            help_text=help_text,
            reply_opens_task=reply_opens_task,
        ),
        keep=[retailer],
    )
    await _finish(session, client, settings, retailer, outcome)
    twiml = MessagingResponse()
    if outcome.reply:
        twiml.message(outcome.reply)
    return Response(content=str(twiml), media_type=TWIML)


CALLBACK_THANKS = "Thank you, someone will call you back shortly."
GOODBYE = "Thank you. Goodbye."


@router.post("/twilio/{retailer_id}/voice-gather", response_class=Response)
async def twilio_voice_gather(
    twilio: TwilioDep,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalClientDep,
    message_id: int | None = Query(
        default=None, ge=1, le=2**31 - 1, description="Our id of the call's message."
    ),
) -> Response:
    """The key pressed after an automated call's "Press 1 to talk to someone" (the ``<Gather>``
    action of the call's TwiML). 1: the call's cart gets a callback request and its workflow
    opens an agent callback task; any other key: goodbye. Stored once per call. Answers TwiML."""
    form, retailer = twilio.form, twilio.retailer
    outcome = await retry_on_conflict(
        session,
        lambda: apply_twilio_voice_gather(
            session, retailer_id=retailer.id, message_id=message_id, form=form
        ),
        keep=[retailer],
    )
    await _finish(session, client, settings, retailer, outcome)
    twiml = VoiceResponse()
    wants_agent = outcome.reply == "callback" or (
        outcome.duplicates and (form.get("Digits") or "").strip() == "1"
    )
    twiml.say(CALLBACK_THANKS if wants_agent else GOODBYE)
    twiml.hangup()
    return Response(content=str(twiml), media_type=TWIML)
