"""What a cadence may say, and the journey the workflow gets from it (no server, no database)."""

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from winback.carts.cadence import CadenceIn, default_cadence, to_workflow_spec


def _cadence(*steps: dict[str, Any], **extra: Any) -> CadenceIn:
    return CadenceIn.model_validate({"steps": list(steps), **extra})


@pytest.mark.parametrize(
    ("steps", "extra", "message"),
    [
        (
            [{"channel": "email", "delay": "2h"}, {"channel": "sms", "delay": "1h"}],
            {},
            "steps[1].delay: steps run in order; 1h comes before the previous step's 2h",
        ),
        (
            [{"channel": "email", "delay": "25h"}],
            {},
            "steps[0].delay: the first email must go within 24h of abandonment, not 1d1h",
        ),
        (
            [{"channel": "sms", "delay": "8d"}],
            {},
            "steps[0].delay: 8d is after the cart expires (7d)",
        ),
        ([{"channel": "onsite"}, {"channel": "onsite"}], {}, "at most one 'onsite' step"),
        (
            [{"channel": "email", "sla": "1h"}],
            {},
            "sla, remind_before, skills and queue are for agent_call and onsite",
        ),
        (
            [{"channel": "sms", "conditions": {"min_cart_value": 200, "max_cart_value": 100}}],
            {},
            "min_cart_value must be below max_cart_value",
        ),
        ([{"channel": "agent_call", "sla": "30s"}], {}, "must be between 1m and 7d"),
        ([{"channel": "email"}], {"abandon_after": "5s"}, "must be between 10s and 1d"),
        ([{"channel": "email", "discount": {}}], {}, "give exactly one of 'code' or 'pool'"),
        ([{"channel": "fax"}], {}, "Input should be 'onsite', 'email', 'sms'"),
    ],
    ids=[
        "out-of-order",
        "first-email-late",
        "after-expiry",
        "two-nudges",
        "sla-on-email",
        "empty-value-range",
        "short-sla",
        "short-abandonment",
        "discount-neither",
        "unknown-channel",
    ],
)
def test_a_cadence_that_cannot_run_as_written_is_refused_saying_why(
    steps: list[dict[str, Any]], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _cadence(*steps, **extra)

    assert message in str(refused.value)


def test_a_later_email_may_wait_longer_than_a_day_once_the_first_went() -> None:
    cadence = _cadence({"channel": "email", "delay": "1h"}, {"channel": "email", "delay": "3d"})

    assert [s.delay for s in cadence.steps] == [timedelta(hours=1), timedelta(days=3)]


def test_the_default_journey_is_the_briefs() -> None:
    spec = to_workflow_spec(default_cadence(), version=0)

    assert [(s.channel, s.delay_seconds, s.template) for s in spec.steps] == [
        ("onsite", 0, "onsite_help"),
        ("email", 3600, "cart_reminder"),
        ("sms", 86400, "cart_sms"),
        ("agent_call", 86400, ""),
        ("email", 3 * 86400, "cart_last_chance"),
    ]
    sms, call = spec.steps[2], spec.steps[3]
    assert (sms.max_cart_value, call.min_cart_value, call.sla_seconds) == (200, 200, 4 * 3600)
    assert (spec.abandon_after_seconds, spec.expire_after_seconds) == (1800, 7 * 86400)
    guards = spec.guards
    assert (guards.quiet_start, guards.quiet_end) == ("21:00", "08:00")
    assert (guards.cap_max_messages, guards.cap_window_seconds) == (2, 86400)
    assert spec.steps[0].offer == ["chat", "callback"]


def test_the_workflow_spec_carries_every_setting_of_a_step() -> None:
    cadence = _cadence(
        {
            "channel": "agent_call",
            "delay": "2h",
            "sla": "1h",
            "remind_before": "0s",
            "skills": ["lang:es", "category:shoes", "lang:es"],
            "queue": "vip",
            "conditions": {"min_cart_value": 50, "unless": "email_opened"},
        },
        {"channel": "email", "delay": "1d", "discount": {"pool": "spring"}},
        frequency_cap=None,
        quiet_hours={"start": "22:30", "end": "07:15"},
    )

    call, email = to_workflow_spec(cadence, version=4).steps
    assert (call.sla_seconds, call.remind_before_seconds, call.queue) == (3600, 0, "vip")
    assert call.skills == ["category:shoes", "lang:es"]  # sorted, once each
    assert (call.min_cart_value, call.unless) == (50, "email_opened")
    assert (email.template, email.discount_pool, email.discount_code) == (
        "cart_reminder",
        "spring",
        None,
    )
    guards = to_workflow_spec(cadence, version=4).guards
    assert (guards.quiet_start, guards.quiet_end, guards.cap_max_messages) == (
        "22:30",
        "07:15",
        None,
    )
