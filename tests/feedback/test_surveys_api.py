"""Surveys Winback sends and collects itself, through the real app, worker and database: the
signed hosted page (good, altered, expired, used), the SMS reply, the IVR call (Twilio faked at
its HTTP boundary, the gather webhook signed like Twilio signs it), each answer once and on the
same path as ``POST /v1/feedback`` (alert rules, cases, follow-ups)."""

import asyncio
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from itsdangerous.timed import TimestampSigner
from pytest_httpserver import HTTPServer
from sqlmodel import select
from twilio.request_validator import RequestValidator

from activities.feedback.cases import CaseActivities
from tests.conftest import RetailerClient, Stack
from tests.messaging.conftest import twilio_contract  # noqa: F401  (a fixture)
from tests.support.api import eventually
from winback.customers.models import Customer
from winback.feedback.models import FeedbackAnswer, FeedbackCase, SurveyInvite
from winback.messaging.channels import ChannelAdapter
from winback.messaging.channels.outbox import OutboxAdapter
from winback.messaging.channels.twilio_channels import TwilioVoiceAdapter
from winback.platform.clock import utcnow
from winback.platform.settings import Settings
from workflows.feedback.types import FollowUpSurveyInput

pytestmark = [pytest.mark.both_databases, pytest.mark.shared_server]

TWILIO_TOKEN = "twilio-test-auth-token"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
PUBLIC_BASE = "http://localhost:8000"  # the default public_base_url: links and Twilio's URLs
PHONE = "+14155552671"
ANA = {"email": "ana@example.com", "phone": PHONE, "name": "Ana García"}
ZONE = ZoneInfo("America/Los_Angeles")  # PHONE's, which decides the quiet hours


def cadence(quiet_start: str = "00:00", quiet_end: str = "00:00") -> dict[str, Any]:
    """The retailer's cadence, whose quiet hours every text and call keeps (none by default
    here: the tests run at any hour)."""
    return {
        "quiet_hours": {"start": quiet_start, "end": quiet_end},
        "steps": [{"channel": "onsite"}, {"channel": "email", "delay": "1h"}],
    }


RULES = {
    "business_units": [
        {"id": "store-a", "name": "Store A", "owner": {"name": "Olga", "email": "olga@a.test"}}
    ],
    "default_business_unit": "store-a",
}


@pytest.fixture(autouse=True)
def twilio_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Set before the stack reads its settings."""
    monkeypatch.setenv("WINBACK_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    yield


@pytest.fixture
def adapters(httpserver: HTTPServer) -> dict[str, ChannelAdapter]:
    """The outbox for messages; calls through the real Twilio SDK to a stand-in api.twilio.com."""
    outbox = OutboxAdapter()
    voice = TwilioVoiceAdapter(
        account_sid=ACCOUNT_SID,
        auth_token=TWILIO_TOKEN,
        from_number="+15005550006",
        base_url=httpserver.url_for(""),
    )
    return {"email": outbox, "sms": outbox, "voice": voice}


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    retailer = await stack.retailer(country="ES")
    response = await retailer.put("/v1/alert-rules", RULES)
    assert response.status_code == 201, response.text
    response = await retailer.put("/v1/cadence", cadence())
    assert response.status_code == 201, response.text
    return retailer


async def ask(retailer: RetailerClient, channel: str = "email", **extra: Any) -> dict[str, Any]:
    body = {
        "idempotency_key": uuid.uuid4().hex,
        "channel": channel,
        "customer": ANA,
        "consent": {"email": True, "sms": True, "voice": True},
        **extra,
    }
    response = await retailer.post("/v1/surveys", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC_BASE + "/s/"), url
    return url[len(PUBLIC_BASE) :]


async def answers(stack: Stack, retailer: RetailerClient) -> list[FeedbackAnswer]:
    async with stack.sessions() as session:
        query = select(FeedbackAnswer).where(FeedbackAnswer.retailer_id == retailer.id)
        return list((await session.exec(query)).all())


async def invite(stack: Stack, invite_id: int) -> SurveyInvite:
    async with stack.sessions() as session:
        row = await session.get(SurveyInvite, invite_id)
        assert row is not None
        return row


async def sent(retailer: RetailerClient, template: str) -> list[dict[str, Any]]:
    return [m for m in await retailer.outbox() if m["template"] == template]


def sign(path: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    signature = RequestValidator(token).compute_signature(PUBLIC_BASE + path, form)
    return {"X-Twilio-Signature": signature}


async def post_twilio(stack: Stack, path: str, form: dict[str, str], **kw: Any) -> httpx.Response:
    return await stack.api.post(path, data=form, headers=sign(path, form, **kw))


def radios(html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="score" value="(\d+)"', html)


# --- the hosted page ---------------------------------------------------------------------------


async def test_an_email_survey_links_to_a_page_that_takes_one_answer(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "email")
    [message] = await eventually(lambda: sent(retailer, "survey"), what="the survey email")
    assert survey["url"] in message["body"]
    assert message["to_address"] == ANA["email"]
    page = path_of(survey["url"])

    form = await stack.api.get(page)
    assert form.status_code == 200
    assert radios(form.text) == [str(n) for n in range(11)]
    assert ANA["email"] not in form.text and ANA["name"] not in form.text  # no personal data
    assert '<html lang="es">' in form.text  # a store in Spain speaks Spanish by default

    done = await stack.api.post(page, data={"score": "3", "comment": "Llegó tarde"})
    assert done.status_code == 303
    thanks = await stack.api.get(done.headers["location"])
    assert "¡Gracias!" in thanks.text and "Hemos recibido" in thanks.text

    again = await stack.api.post(page, data={"score": "10", "comment": "changed my mind"})
    assert again.status_code == 303
    revisit = await stack.api.get(page)
    assert revisit.status_code == 200 and "Ya respondió" in revisit.text
    assert not radios(revisit.text)

    [answer] = await answers(stack, retailer)
    assert (answer.score, answer.comment, answer.channel) == (3, "Llegó tarde", "email")
    status = (await retailer.get(f"/v1/surveys/{survey['id']}")).json()
    assert (status["answered"], status["answer_id"], status["url"]) == (
        True,
        answer.id,
        survey["url"],
    )
    other = await stack.retailer()
    assert (await other.get(f"/v1/surveys/{survey['id']}")).status_code == 404
    assert answer.idempotency_key == f"survey-{survey['id']}"
    assert answer.kind == "detractor" and answer.case_id is not None
    async with stack.sessions() as session:
        customer = await session.get(Customer, answer.customer_id)
        case = await session.get(FeedbackCase, answer.case_id)
    assert customer is not None and customer.email == ANA["email"]
    assert case is not None and case.customer_id == customer.id  # the alert rules' case
    assert (await invite(stack, survey["id"])).answer_id == answer.id


async def test_an_altered_link_is_not_found_and_an_expired_one_is_gone(
    stack: Stack, retailer: RetailerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    survey = await ask(retailer, "link")
    page = path_of(survey["url"])

    altered = page[:-3] + ("xyz" if not page.endswith("xyz") else "abc")
    assert (await stack.api.get(altered)).status_code == 404
    assert (await stack.api.post(altered, data={"score": "9"})).status_code == 404
    assert (await stack.api.get("/s/" + "a" * 500)).status_code in (404, 422)

    # A link signed longer ago than links live.
    signed_at = int(time.time()) - 367 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
    from winback.feedback.survey_links import survey_url

    old = survey_url(Settings(), retailer.id, survey["id"])  # type: ignore[call-arg]
    monkeypatch.undo()
    assert (await stack.api.get(path_of(old))).status_code == 410

    # An invite whose own expiry has passed.
    async with stack.sessions() as session:
        row = await session.get(SurveyInvite, survey["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        await session.commit()
    gone = await stack.api.post(page, data={"score": "9"})
    assert gone.status_code == 410 and "Esta encuesta ha terminado" in gone.text
    assert await answers(stack, retailer) == []


async def test_another_retailers_link_cannot_answer_for_it(
    stack: Stack, retailer: RetailerClient
) -> None:
    other = await stack.retailer()
    survey = await ask(retailer, "link")
    from winback.feedback.survey_links import survey_url

    forged = survey_url(Settings(), other.id, survey["id"])  # type: ignore[call-arg]
    assert (await stack.api.post(path_of(forged), data={"score": "9"})).status_code == 404
    assert await answers(stack, retailer) == []


async def test_the_page_speaks_the_asked_language_and_csat_has_five_choices(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "link", scale="csat", locale="en-GB")
    page = path_of(survey["url"])

    english = await stack.api.get(page)
    assert '<html lang="en">' in english.text and "How satisfied are you" in english.text
    assert radios(english.text) == ["1", "2", "3", "4", "5"]
    spanish = await stack.api.get(page, params={"lang": "es"})
    assert "grado de satisfacción" in spanish.text


async def test_no_score_or_one_off_the_scale_shows_the_form_again_with_the_comment(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "link", scale="csat", locale="en")
    page = path_of(survey["url"])

    for score in (None, "9", "x"):
        data = {"comment": "kept <b>as typed</b>"} | ({"score": score} if score else {})
        response = await stack.api.post(page, data=data)
        assert response.status_code == 422
        assert 'role="alert"' in response.text and "Please choose a score." in response.text
        assert "kept &lt;b&gt;as typed&lt;/b&gt;" in response.text  # escaped, not lost
    assert await answers(stack, retailer) == []


# --- asking ------------------------------------------------------------------------------------


async def test_a_resent_survey_is_the_same_one_sent_once(
    stack: Stack, retailer: RetailerClient
) -> None:
    key = uuid.uuid4().hex
    first = await ask(retailer, "sms", idempotency_key=key)
    again = await retailer.post(
        "/v1/surveys", {"idempotency_key": key, "channel": "sms", "customer": ANA}
    )

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"] and again.json()["duplicate"] is True
    await eventually(lambda: sent(retailer, "survey"), what="the survey text")
    [text] = await sent(retailer, "survey")
    assert text["channel"] == "sms" and "Responda con un número" in text["body"]
    assert first["url"] in text["body"]


async def test_a_survey_needs_rules_an_address_and_consent(stack: Stack) -> None:
    bare = await stack.retailer()
    body = {"idempotency_key": "k", "channel": "email", "customer": ANA}
    assert (await bare.post("/v1/surveys", body)).status_code == 409

    await bare.put("/v1/alert-rules", RULES)
    no_consent = await bare.post("/v1/surveys", body)
    assert no_consent.status_code == 422 and "consent.email" in no_consent.text
    no_phone = await bare.post(
        "/v1/surveys",
        {"idempotency_key": "k2", "channel": "voice", "customer": {"email": "x@example.com"}},
    )
    assert no_phone.status_code == 422 and "customer.phone" in no_phone.text
    unknown_unit = await bare.post(
        "/v1/surveys", {"idempotency_key": "k3", "channel": "link", "business_unit": "nope"}
    )
    assert unknown_unit.status_code == 422
    bad_scale = await bare.post(
        "/v1/surveys", {"idempotency_key": "k4", "channel": "link", "scale": "stars"}
    )
    assert bad_scale.status_code == 422


# --- SMS replies -------------------------------------------------------------------------------


def sms(body: str, sender: str = PHONE) -> dict[str, str]:
    return {"SmsSid": f"SM{uuid.uuid4().hex}", "From": sender, "To": "+15005550006", "Body": body}


async def text_in(stack: Stack, retailer: RetailerClient, body: str, **kw: Any) -> str:
    path = f"/v1/webhooks/twilio/{retailer.id}/sms-inbound"
    response = await post_twilio(stack, path, sms(body, **kw))
    assert response.status_code == 200, response.text
    return "".join(ET.fromstring(response.text).itertext())


async def test_an_sms_reply_with_a_score_is_the_surveys_answer_once(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "sms")

    assert "Responda con un número del 0 al 10" in await text_in(stack, retailer, "11")
    assert await answers(stack, retailer) == []
    reply = await text_in(stack, retailer, "10 gracias")
    assert "(10)" in reply
    assert "ya tenemos" in await text_in(stack, retailer, "diez")  # a second reply: one answer

    [answer] = await answers(stack, retailer)
    assert (answer.score, answer.comment, answer.channel) == (10, "10 gracias", "sms")
    assert answer.kind == "promoter"
    assert (await invite(stack, survey["id"])).answer_id == answer.id


async def test_stop_still_opts_out_while_a_survey_is_open(
    stack: Stack, retailer: RetailerClient
) -> None:
    await ask(retailer, "sms")

    await text_in(stack, retailer, "STOP")

    async with stack.sessions() as session:
        query = select(Customer).where(Customer.retailer_id == retailer.id)
        customer = (await session.exec(query)).one()
    assert (customer.consent_sms, customer.consent_voice) == (False, False)
    assert await answers(stack, retailer) == []


async def test_a_score_from_a_number_without_a_survey_is_an_ordinary_text(
    stack: Stack, retailer: RetailerClient
) -> None:
    await ask(retailer, "sms")

    assert await text_in(stack, retailer, "9", sender="+14155550000") == ""
    assert await answers(stack, retailer) == []


# --- IVR ---------------------------------------------------------------------------------------


async def test_an_ivr_survey_calls_asks_and_records_the_keypad_answer_once(
    stack: Stack,
    retailer: RetailerClient,
    httpserver: HTTPServer,
    twilio_contract: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    httpserver.expect_request(CALLS, method="POST").respond_with_json(
        {"sid": "CA" + "d" * 32, "status": "queued"}, status=201
    )
    survey = await ask(retailer, "voice")

    async def placed() -> list[dict[str, Any]]:  # "sending" is listed before Twilio is called
        return [m for m in await sent(retailer, "survey") if m["status"] != "sending"]

    await eventually(placed, what="the survey call")
    [(call, _)] = httpserver.log
    twilio_contract(call)
    assert call.form["To"] == PHONE
    gather = ET.fromstring(call.form["Twiml"]).find("Gather")
    assert gather is not None
    action = gather.attrib["action"]
    assert action == (
        f"{PUBLIC_BASE}/v1/webhooks/twilio/{retailer.id}/survey-gather"
        f"?invite={survey['id']}&attempt=1"
    )
    path = action[len(PUBLIC_BASE) :]
    pressed = {"CallSid": "CA" + "d" * 32, "Digits": "2", "From": "+15005550006", "To": PHONE}

    forged = await stack.api.post(path, data=pressed, headers=sign(path, pressed, token="wrong"))
    assert forged.status_code == 403
    unsigned = await stack.api.post(path, data=pressed)
    assert unsigned.status_code == 403

    wrong_key = await post_twilio(stack, path, {**pressed, "Digits": "42"})
    retry = ET.fromstring(wrong_key.text).find("Gather")
    assert retry is not None and retry.attrib["action"].endswith("attempt=2")
    assert await answers(stack, retailer) == []

    first = await post_twilio(stack, path, pressed)
    assert first.status_code == 200 and "Gracias por su respuesta" in first.text
    twice = await post_twilio(stack, path, {**pressed, "Digits": "9"})  # Twilio retries
    assert "Gracias por su respuesta" in twice.text

    [answer] = await answers(stack, retailer)
    assert (answer.score, answer.channel, answer.kind) == (2, "ivr", "detractor")
    assert answer.case_id is not None  # an unhappy keypad answer opens a case like any other


# --- the follow-up survey of a case ------------------------------------------------------------


async def test_the_follow_up_survey_carries_the_link_and_its_answer_joins_the_case(
    stack: Stack, retailer: RetailerClient
) -> None:
    detractor = await retailer.post(
        "/v1/feedback",
        {
            "idempotency_key": uuid.uuid4().hex,
            "channel": "web",
            "scale": "nps",
            "score": 2,
            "customer": {"email": "bo@example.com", "locale": "en"},
            "consent": {"email": True},
        },
    )
    case = detractor.json()
    activities = CaseActivities(stack.sessions, {"email": OutboxAdapter()}, Settings())  # type: ignore[call-arg]
    follow_up = FollowUpSurveyInput(retailer.id, case["case_id"], case["workflow_id"], utcnow())

    assert await activities.send_follow_up_survey(follow_up) == "email"
    assert await activities.send_follow_up_survey(follow_up) == "email"  # a retried activity

    [message] = await sent(retailer, "follow_up_survey")
    assert "How likely are you to recommend" in message["body"]
    url = re.search(r"http://localhost:8000/s/\S+", message["body"])
    assert url is not None
    done = await stack.api.post(path_of(url.group(0)), data={"score": "9"})
    assert done.status_code == 303

    follow_ups = [a for a in await answers(stack, retailer) if a.follow_up_of]
    assert [(a.score, a.follow_up_of, a.case_id) for a in follow_ups] == [
        (9, case["case_id"], case["case_id"])
    ]


# --- at the same moment, and after an erasure ----------------------------------------------------


async def test_two_submits_of_one_link_at_once_are_one_answer(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "link")
    page = path_of(survey["url"])

    both = await asyncio.gather(
        stack.api.post(page, data={"score": "8"}), stack.api.post(page, data={"score": "4"})
    )

    assert [r.status_code for r in both] == [303, 303]
    [answer] = await answers(stack, retailer)
    assert answer.score in (8, 4)


async def test_a_follow_up_by_sms_carries_the_link_and_takes_a_reply(
    stack: Stack, retailer: RetailerClient
) -> None:
    detractor = await retailer.post(
        "/v1/feedback",
        {
            "idempotency_key": uuid.uuid4().hex,
            "channel": "sms",
            "scale": "nps",
            "score": 1,
            "customer": {"phone": PHONE},
            "consent": {"sms": True},
        },
    )
    case = detractor.json()
    activities = CaseActivities(stack.sessions, {"sms": OutboxAdapter()}, Settings())  # type: ignore[call-arg]
    follow_up = FollowUpSurveyInput(retailer.id, case["case_id"], case["workflow_id"], utcnow())

    assert await activities.send_follow_up_survey(follow_up) == "sms"

    [text] = await sent(retailer, "follow_up_survey")
    assert f"caso n.º {case['case_id']}" in text["body"] and "/s/" in text["body"]
    assert "(7)" in await text_in(stack, retailer, "7")
    [answer] = [a for a in await answers(stack, retailer) if a.follow_up_of]
    assert (answer.score, answer.case_id, answer.channel) == (7, case["case_id"], "sms")


async def test_erasing_the_customer_closes_their_survey_links(
    stack: Stack, retailer: RetailerClient
) -> None:
    survey = await ask(retailer, "sms")

    erased = await retailer.post(
        "/v1/customers/erase", {"phone": PHONE, "requested_by": "dpo@acme.test"}
    )

    assert erased.status_code == 200, erased.text
    row = await invite(stack, survey["id"])
    assert row.phone is None
    assert (await stack.api.get(path_of(survey["url"]))).status_code == 410
    assert await text_in(stack, retailer, "9") == ""  # no longer matched to anyone
