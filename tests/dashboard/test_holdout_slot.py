"""The cart page's holdout section (issue 15, part B fills the report's ``holdout``): empty
until the report has one, then both groups, the lift and its interval in words and figures."""

import re

from api.pages.console.templating import templates


def render(holdout: object) -> str:
    html = templates.env.get_template("dashboard/_holdout.html").render(holdout=holdout)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_no_holdout_says_the_lift_cannot_be_measured_yet() -> None:
    assert "No holdout group in this period" in render(None)


def test_a_holdout_section_shows_both_groups_the_lift_and_its_interval() -> None:
    group = {"carts": 1000, "conversions": 120, "conversion_rate": 0.12, "revenue": 12000.0}
    text = render(
        {
            "treated": {**group, "revenue_per_cart": 12.0},
            "held_out": {
                "carts": 1000,
                "conversions": 80,
                "conversion_rate": 0.08,
                "revenue": 8000.0,
                "revenue_per_cart": 8.0,
            },
            "verdict": "significant",
            "lift": 0.04,
            "lift_ci_low": 0.013718,
            "lift_ci_high": 0.066449,
            "incremental_revenue": 4000.0,
            "relative_lift": 0.5,
            "confidence": 0.95,
            "method": "newcombe_hybrid_score",
            "messages_held_out": 2400,
        }
    )
    assert "No holdout group" not in text
    assert "Conversion lift +4.0 pp (95% interval +1.4 pp to +6.6 pp): significant" in text
    assert "Conversion rate 12.0 % 8.0 %" in text
    assert "Revenue per cart 12.00 8.00" in text
    assert "Incremental revenue 4,000.00" in text
    assert "Relative lift 50.0 %" in text
    assert "Touches held out (not sent) 2,400" in text


def test_an_empty_group_says_the_lift_is_not_measurable_yet() -> None:
    empty = {"carts": 0, "conversions": 0, "conversion_rate": 0.0, "revenue": 0.0}
    text = render(
        {
            "treated": {**empty, "revenue_per_cart": 0.0, "carts": 3},
            "held_out": {**empty, "revenue_per_cart": 0.0},
            "verdict": "not significant",
            "lift": None,
            "lift_ci_low": None,
            "lift_ci_high": None,
            "incremental_revenue": 0.0,
            "relative_lift": None,
            "messages_held_out": 0,
        }
    )
    assert "Not measurable yet" in text and "Relative lift —" in text
