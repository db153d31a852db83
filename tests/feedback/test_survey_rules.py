"""Pure rules of the surveys Winback collects: reading a score out of an SMS reply or off the
keypad, the signed links, the language a survey speaks, and the TwiML of the survey call."""

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from itsdangerous.timed import TimestampSigner
from pydantic import SecretStr

from winback.feedback.models import SurveyInvite
from winback.feedback.survey_links import (
    ExpiredSurveyLink,
    InvalidSurveyLink,
    make_survey_token,
    verify_survey_token,
)
from winback.feedback.survey_texts import accept_language, pick_language
from winback.feedback.surveys import parse_keypad, parse_score_reply, survey_twiml
from winback.platform.settings import Settings

SETTINGS = Settings(survey_secret=SecretStr("s3cret"))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("body", "score"),
    [
        ("9", 9),
        ("10", 10),
        ("10 gracias", 10),
        ("  8!  ", 8),
        ("9/10", 9),
        ("0", 0),
        ("diez", 10),
        ("Nueve, muy bien", 9),
        ("ten", 10),
        ("séis", 6),  # accents typed or not
        ("11", 11),  # out of range is the caller's to explain
        ("42 please", 42),
    ],
)
def test_a_reply_that_starts_with_a_score_is_read(body: str, score: int) -> None:
    assert parse_score_reply(body) == score


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "START", "HELP", "thanks", "", "   ", "+34 612 345 678", "4.5", "1234"]
)
def test_anything_else_is_not_a_score(body: str) -> None:
    assert parse_score_reply(body) is None


@pytest.mark.parametrize(
    ("digits", "score"), [("9", 9), ("10", 10), ("10#", 10), ("0#", 0), ("", None), ("*", None)]
)
def test_keypad_digits(digits: str, score: int | None) -> None:
    assert parse_keypad(digits) == score


def test_a_signed_link_names_its_retailer_and_invite() -> None:
    token = make_survey_token(SETTINGS, "acme", 17)

    target = verify_survey_token(SETTINGS, token)

    assert (target.retailer_id, target.invite_id) == ("acme", 17)


def test_an_altered_or_foreign_link_is_refused() -> None:
    token = make_survey_token(SETTINGS, "acme", 17)
    other = Settings(survey_secret=SecretStr("another"))  # type: ignore[call-arg]

    with pytest.raises(InvalidSurveyLink):
        verify_survey_token(SETTINGS, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    with pytest.raises(InvalidSurveyLink):
        verify_survey_token(other, token)
    with pytest.raises(InvalidSurveyLink):
        verify_survey_token(SETTINGS, "not-a-token")


def test_one_invite_always_has_the_same_link() -> None:
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    first = make_survey_token(SETTINGS, "acme", 17, created)

    assert make_survey_token(SETTINGS, "acme", 17, created) == first


def test_a_link_older_than_its_lifetime_is_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    signed_at = int(time.time()) - 367 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
    token = make_survey_token(SETTINGS, "acme", 17)
    monkeypatch.undo()

    with pytest.raises(ExpiredSurveyLink):
        verify_survey_token(SETTINGS, token)


def test_a_link_signed_with_an_old_secret_still_works_through_a_rotation() -> None:
    old = Settings(survey_secret=SecretStr("old"))  # type: ignore[call-arg]
    rotated = Settings(  # type: ignore[call-arg]
        survey_secret=SecretStr("new"), survey_old_secrets=[SecretStr("old")]
    )

    assert verify_survey_token(rotated, make_survey_token(old, "acme", 3)).invite_id == 3


def test_the_language_is_asked_then_the_customers_then_the_browsers_then_the_country() -> None:
    assert pick_language(asked="es", locale="en-GB") == "es"
    assert pick_language(asked="xx", locale="es-MX") == "es"
    assert pick_language(locale=None, browser=accept_language("fr;q=1, es;q=0.9, en;q=0.8")) == "es"
    assert pick_language(browser=accept_language("en-US,en;q=0.9")) == "en"
    assert pick_language(country="ES") == "es"
    assert pick_language(country="US") == "en"


def test_the_survey_call_asks_and_gathers_up_to_two_keys_ended_by_hash() -> None:
    invite = SurveyInvite(id=5, retailer_id="acme", key="k", channel="voice", scale="nps")
    url = "https://winback.example/v1/webhooks/twilio/acme/survey-gather?invite=5&attempt=1"

    twiml = ET.fromstring(survey_twiml(invite, store="Acme", language="es", gather_url=url))

    gather, goodbye, hangup = list(twiml)
    assert gather.tag == "Gather"
    assert gather.attrib["action"] == url
    assert (gather.attrib["numDigits"], gather.attrib["finishOnKey"]) == ("2", "#")
    [question] = list(gather)
    assert question.attrib["language"] == "es-ES"
    assert "Del 0 al 10" in (question.text or "")
    assert goodbye.tag == "Say" and hangup.tag == "Hangup"


def test_a_csat_call_in_english_asks_from_1_to_5_and_says_why_it_asks_again() -> None:
    invite = SurveyInvite(id=6, retailer_id="acme", key="k", channel="voice", scale="csat")
    url = "https://winback.example/v1/webhooks/twilio/acme/survey-gather?invite=6&attempt=2"

    twiml = ET.fromstring(
        survey_twiml(invite, store="Acme", language="en", gather_url=url, problem="Sorry.")
    )

    gather = twiml.find("Gather")
    assert gather is not None
    problem, question = list(gather)
    assert (problem.text, problem.attrib["language"]) == ("Sorry.", "en-US")
    assert "scale from 1 to 5" in (question.text or "")
