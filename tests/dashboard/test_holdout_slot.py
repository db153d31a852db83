"""The cart page's holdout section (issue 15, part B fills the report's ``holdout``): empty
until the report has one, then every figure of it on the page, whatever its exact shape."""

import re

from api.pages.console.templating import templates


def render(holdout: object) -> str:
    html = templates.env.get_template("dashboard/_holdout.html").render(holdout=holdout)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_no_holdout_says_the_lift_cannot_be_measured_yet() -> None:
    assert "No holdout group in this period" in render(None)


def test_a_holdout_section_shows_both_groups_and_the_interval() -> None:
    text = render(
        {
            "held_out_share": 0.1,
            "treated": {"carts": 900, "conversion_rate": 0.12, "revenue_per_cart": 10.5},
            "held_out": {"carts": 100, "conversion_rate": 0.05, "revenue_per_cart": 4.2},
            "incremental_revenue": 5670.0,
            "lift_ci_95": [0.021, 0.119],
        }
    )
    assert "No holdout group" not in text
    assert "conversion rate 0.12 0.05" in text
    assert "revenue per cart 10.5 4.2" in text
    assert "incremental revenue 5,670.0" in text
    assert "lift ci 95 0.021 \N{EN DASH} 0.119" in text
    assert "held out share 0.1" in text
