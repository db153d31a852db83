"""The report's holdout section against a seeded data set with a known answer, and last-touch
attribution with a window per channel."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from winback.carts.attribution import attributed_touch
from winback.carts.cadence import CadenceIn
from winback.carts.cadence_store import save_cadence
from winback.carts.holdout import HELD_OUT, TREATED
from winback.carts.models import Cart
from winback.carts.report import cart_recovery_report
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases
DAY = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def _message(channel: str, at: datetime, status: str = "sent", n: int = 0) -> Message:
    return Message(
        id=n,
        retailer_id="shop",
        dedupe_key=f"k{n}",
        channel=channel,
        cart_id="c",
        step_index=n,
        status=status,
        created_at=at,
    )


def test_an_order_goes_to_the_last_touch_whose_channel_window_covers_it() -> None:
    cadence = CadenceIn.model_validate(
        {"steps": [{"channel": "email"}], "attribution_windows": {"email": "3d", "sms": "1d"}}
    )
    order = DAY + timedelta(days=3)
    email = _message("email", DAY + timedelta(hours=12), n=1)  # 2.5 days before: within 3d
    sms = _message("sms", DAY + timedelta(days=1), n=2)  # later, but 2 days: past its 1d
    assert attributed_touch(order, [email, sms], cadence.window_for) is email

    recent_sms = _message("sms", order - timedelta(hours=2), n=3)
    assert attributed_touch(order, [email, sms, recent_sms], cadence.window_for) is recent_sms

    held = _message("sms", order - timedelta(hours=1), status="held_out", n=4)
    assert attributed_touch(order, [email, held], cadence.window_for) is email  # never credited
    assert attributed_touch(order + timedelta(days=3), [email, sms], cadence.window_for) is None
    assert (
        attributed_touch(order, [_message("email", order + timedelta(1), n=5)], cadence.window_for)
        is None
    )


def _hand_newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe's method 10 written out: a Wilson interval per group, z = 1.96."""
    z = 1.96

    def wilson(x: int, n: int) -> tuple[float, float]:
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = (z / (1 + z * z / n)) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    return (
        p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


async def _seed(sessions: SessionFactory, groups: dict[str, tuple[int, int]]) -> None:
    """``groups``: group → (carts, of which ordered). Every order is worth 50."""
    async with session_scope(sessions) as session:
        session.add(Retailer(id="shop", name="Shop", webhook_secret="s"))
        await session.flush()
        cadence = CadenceIn.model_validate(
            {"steps": [{"channel": "email", "delay": "1h"}], "holdout_percent": 50}
        )
        await save_cadence(session, retailer_id="shop", cadence=cadence)
        for group, (count, ordered) in groups.items():
            for i in range(count):
                cart_id = f"{group}-{i}"
                buys = i < ordered
                session.add(
                    Cart(
                        retailer_id="shop",
                        cart_id=cart_id,
                        status="ordered" if buys else "abandoned",
                        workflow_started=True,
                        cadence_version=1,
                        holdout_bucket=0 if group == HELD_OUT else 9999,
                        holdout_group=group,
                        created_at=DAY,
                        abandoned_at=DAY + timedelta(hours=1),
                        ordered_at=DAY + timedelta(hours=3) if buys else None,
                        order_value=50.0 if buys else None,
                        # As the order's arrival credited it: held-out carts had no touch.
                        recovered_step=0 if buys and group == TREATED else None,
                        recovered_channel="email" if buys and group == TREATED else None,
                    )
                )
                # Every cart's email is due at +2h: sent to the treated, recorded for the rest.
                session.add(
                    Message(
                        retailer_id="shop",
                        dedupe_key=f"cart-shop-{cart_id}/step-0",
                        channel="email",
                        cart_id=cart_id,
                        step_index=0,
                        status="sent" if group == TREATED else "held_out",
                        created_at=DAY + timedelta(hours=2),
                    )
                )


async def test_the_lift_of_a_known_data_set(sessions: SessionFactory) -> None:
    """1,000 treated carts converting at 12%, 1,000 held out at 8%: 4 points of lift."""
    await _seed(sessions, {TREATED: (1000, 120), HELD_OUT: (1000, 80)})
    async with sessions() as session:
        report = await cart_recovery_report(
            session, retailer_id="shop", since=DAY - timedelta(days=1), until=DAY + timedelta(1)
        )

    holdout = report.holdout
    assert holdout is not None
    assert holdout.treated.model_dump() == {
        "carts": 1000,
        "conversions": 120,
        "conversion_rate": 0.12,
        "revenue": 6000.0,
        "revenue_per_cart": 6.0,
    }
    assert holdout.held_out.model_dump() == {
        "carts": 1000,
        "conversions": 80,
        "conversion_rate": 0.08,
        "revenue": 4000.0,
        "revenue_per_cart": 4.0,
    }
    assert holdout.incremental_revenue == 2000.0  # (6.00 - 4.00) per cart x 1,000 treated carts
    assert holdout.lift == pytest.approx(0.04)
    assert holdout.relative_lift == pytest.approx(0.5)
    low, high = _hand_newcombe(120, 1000, 80, 1000)
    # By hand: Wilson 12% of 1000 = [0.10130, 0.14161], 8% of 1000 = [0.06475, 0.09847];
    # 0.04 - sqrt(0.01870² + 0.01847²) = 0.01372; 0.04 + sqrt(0.02161² + 0.01525²) = 0.06645.
    assert (round(low, 5), round(high, 5)) == (0.01372, 0.06645)
    assert holdout.lift_ci_low == pytest.approx(low, abs=1e-5)
    assert holdout.lift_ci_high == pytest.approx(high, abs=1e-5)
    # With groups this large the simple Wald interval is almost the same: 0.04 ± 0.02624.
    wald = 1.96 * math.sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 1000)
    assert holdout.lift_ci_low == pytest.approx(0.04 - wald, abs=5e-4)
    assert (holdout.method, holdout.confidence, holdout.verdict) == (
        "newcombe_hybrid_score",
        0.95,
        "significant",
    )
    assert holdout.messages_held_out == 1000

    # Held-out records are not sends: only the treated emails and their orders show.
    [email] = report.by_channel
    assert (email.channel, email.sent, email.recovered, email.revenue) == (
        "email",
        1000,
        120,
        6000.0,
    )
    assert report.carts_recovered == 120 and report.revenue_recovered == 6000.0
    assert report.study_test.abandoned_with_contact == 0  # no customers seeded


async def test_a_small_difference_is_not_significant(sessions: SessionFactory) -> None:
    await _seed(sessions, {TREATED: (100, 12), HELD_OUT: (100, 10)})
    async with sessions() as session:
        report = await cart_recovery_report(
            session, retailer_id="shop", since=DAY - timedelta(days=1), until=DAY + timedelta(1)
        )
    holdout = report.holdout
    assert holdout is not None and holdout.lift == pytest.approx(0.02)
    assert holdout.lift_ci_low is not None and holdout.lift_ci_low < 0 < (holdout.lift_ci_high or 0)
    assert holdout.verdict == "not significant"
    assert holdout.incremental_revenue == 100.0  # (6.00 - 5.00) per cart x 100 treated carts


async def test_no_experiment_no_holdout_section(sessions: SessionFactory) -> None:
    async with session_scope(sessions) as session:
        session.add(Retailer(id="shop", name="Shop", webhook_secret="s"))
        await session.flush()
        session.add(Cart(retailer_id="shop", cart_id="c", workflow_started=True, created_at=DAY))
    async with sessions() as session:
        report = await cart_recovery_report(
            session, retailer_id="shop", since=DAY - timedelta(days=1), until=DAY + timedelta(1)
        )
    assert report.holdout is None


async def test_only_held_out_carts_so_far_gives_no_lift_yet(sessions: SessionFactory) -> None:
    await _seed(sessions, {HELD_OUT: (10, 1)})
    async with sessions() as session:
        report = await cart_recovery_report(
            session, retailer_id="shop", since=DAY - timedelta(days=1), until=DAY + timedelta(1)
        )
    holdout = report.holdout
    assert holdout is not None and holdout.treated.carts == 0
    assert (holdout.lift, holdout.lift_ci_low, holdout.verdict) == (None, None, "not significant")
    assert holdout.incremental_revenue == 0.0
