"""A shopper calls the store's Twilio number: pop their panel in the console, then connect.

Twilio asks this webhook (signed, verified like every Twilio webhook) what to do with an
incoming call. Before answering, the caller is looked up by their number and a screen pop is
recorded for the queue their open cart routes to, so the agents of that queue see who is
calling, their cart and what they were looking at while the phone still rings. The call is
then connected as the retailer configured: forwarded to ``inbound_call_forward_to``
(``<Dial>``), else held in the Twilio queue named after the Winback queue (``<Enqueue>``).
"""

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from twilio.twiml.voice_response import VoiceResponse

from api.deps import SessionDep
from api.live import bell_of
from api.routers.messaging.webhooks import TWIML, TwilioDep
from winback.platform.clock import utcnow
from winback.tasks.screen_pops import record_inbound_call

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

GREETING = "Thank you for calling {store}. Connecting you now."


@router.post("/twilio/{retailer_id}/voice-inbound", response_class=Response)
async def twilio_voice_inbound(
    request: Request, twilio: TwilioDep, session: SessionDep
) -> Response:
    """Twilio's voice URL for the store's number. Pops the caller's panel in the console of the
    agents of the queue their cart routes to, then answers TwiML that forwards the call to the
    retailer's `inbound_call_forward_to` number, or enqueues it in the queue's name. A call
    Twilio retries is popped once."""
    form, retailer, own = twilio.form, twilio.retailer, twilio.own_settings
    call_sid = form.get("CallSid", "").strip()
    if not call_sid:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "CallSid is missing")
    pop = await record_inbound_call(
        session,
        retailer=retailer,
        call_sid=call_sid[:64],
        caller=form.get("From", "").strip() or "unknown",
        at=utcnow(),
    )
    await session.commit()  # the consoles read it from the database, from any process
    bell_of(request.app).ring()
    twiml = VoiceResponse()
    twiml.say(GREETING.format(store=retailer.name))
    if own is not None and own.inbound_call_forward_to:
        twiml.dial(own.inbound_call_forward_to)
    else:
        twiml.enqueue(pop.queue)
    return Response(content=str(twiml), media_type=TWIML)
