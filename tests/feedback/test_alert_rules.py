"""Alert rules: which answer opens a case, how hot, and rules that could never work (pure
functions and validation: no server, no database)."""

from typing import Any

import pytest
from pydantic import ValidationError

from winback.feedback.alert_rules import AlertRulesIn, classify

MADRID = {"id": "store-madrid", "name": "Madrid", "owner": {"name": "Olga", "email": "o@a.test"}}


def _rules(**extra: Any) -> AlertRulesIn:
    return AlertRulesIn.model_validate({"business_units": [MADRID], **extra})


@pytest.mark.parametrize(
    ("scale", "score", "comment", "kind", "severity"),
    [
        ("nps", 0, None, "detractor", "normal"),
        ("nps", 6, "meh", "detractor", "normal"),
        ("nps", 7, None, "passive", None),
        ("nps", 8, None, "passive", None),
        ("nps", 9, "Lovely", "promoter", None),
        ("nps", 3, "I want a REFUND", "detractor", "hot"),
        ("nps", 10, "great, but I will call my lawyer", "detractor", "hot"),  # words win
        ("csat", 2, None, "detractor", "normal"),
        ("csat", 3, None, "passive", None),
        ("csat", 5, None, "promoter", None),
    ],
)
def test_an_answer_is_a_detractor_promoter_or_passive_by_the_retailers_thresholds(
    scale: str, score: int, comment: str | None, kind: str, severity: str | None
) -> None:
    rules = _rules()
    unit = rules.unit(None)
    assert unit is None  # no default unit: answers must name theirs
    unit = rules.unit("store-madrid")
    assert unit is not None

    verdict = classify(rules, unit, scale, score, comment)

    assert (verdict.kind, verdict.severity, verdict.unit.id) == (kind, severity, "store-madrid")


def test_a_business_unit_can_be_stricter_than_the_retailer() -> None:
    strict = {**MADRID, "id": "store-vip", "nps_at_most": 8}
    rules = _rules(business_units=[MADRID, strict], default_business_unit="store-madrid")
    vip = rules.unit("store-vip")
    madrid = rules.unit(None)
    assert vip is not None and madrid is not None and madrid.id == "store-madrid"

    assert classify(rules, vip, "nps", 8, None).kind == "detractor"
    assert classify(rules, madrid, "nps", 8, None).kind == "passive"


def test_hot_keywords_are_the_retailers_own_and_case_blind() -> None:
    rules = _rules(hot_keywords=["  Broken "])
    unit = rules.unit("store-madrid")
    assert unit is not None

    assert classify(rules, unit, "nps", 5, "it came BROKEN").severity == "hot"
    assert classify(rules, unit, "nps", 5, "I want a refund").severity == "normal"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"nps_at_most": 10}, "nps_at_most: 10 can never match usefully"),
        ({"csat_at_most": 0}, "csat_at_most: 0 can never match usefully"),
        (
            {"nps_at_most": 9, "promoters": {"action": "thank_you"}},
            "promoters: a promoter threshold overlaps the case threshold",
        ),
        ({"promoters": {"nps_at_least": 0}}, "nps_at_least: 0 can never match usefully"),
        ({"default_business_unit": "store-paris"}, "'store-paris' is not one of"),
        ({"business_units": [MADRID, MADRID]}, "ids must be unique"),
        ({"hot_keywords": ["cancel", " "]}, "an empty keyword would match every comment"),
        ({"root_causes": ["Late Delivery"]}, "lowercase letters, digits"),
        ({"resolution_codes": ["refund", "refund"]}, "has duplicates"),
        ({"retry_after": "30s"}, "must be between 1m and 90d"),
        ({"slas": {"hot": {"contact": "100d"}}}, "must be between 1m and 90d"),
        (
            {"business_units": [{**MADRID, "owner": {"name": "Olga"}}]},
            "Olga: give an email or a phone to reach them",
        ),
        (
            {"business_units": [{**MADRID, "owner": {"name": "O", "phone": "12"}}]},
            "is not a phone number",
        ),
    ],
    ids=[
        "nps-everyone",
        "csat-no-one",
        "promoter-overlap",
        "promoter-everyone",
        "unknown-default-unit",
        "duplicate-units",
        "empty-keyword",
        "root-cause-slug",
        "duplicate-codes",
        "short-retry",
        "long-sla",
        "unreachable-owner",
        "bad-owner-phone",
    ],
)
def test_rules_that_could_never_work_are_refused_saying_why(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _rules(**extra)

    assert message in str(refused.value)


def test_owner_phones_are_stored_in_e164_for_hot_alerts() -> None:
    owner = {"name": "Olga", "phone": "+34 612 000 001"}
    rules = _rules(business_units=[{**MADRID, "owner": owner}])

    assert rules.business_units[0].owner.phone == "+34612000001"
