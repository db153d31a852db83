"""The feedback report, against data sets seeded straight into the database whose figures are
known by hand: the deck's own ROI example, a small mixed set, another retailer's rows, and bad
periods."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import RetailerClient, Stack
from winback.customers.models import Customer
from winback.feedback.alert_rules import AlertRulesIn
from winback.feedback.alert_rules_store import save_rules
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.platform.clock import utcnow
from winback.platform.db import session_scope
from winback.tasks.models import Escalation, HumanTask

pytestmark = pytest.mark.both_databases

SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=30)  # one "month" of the deck
PERIOD = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def rules(**extra: Any) -> AlertRulesIn:
    return AlertRulesIn.model_validate(
        {
            "business_units": [
                {
                    "id": "store-a",
                    "name": "Store A",
                    "owner": {"name": "Olga", "email": "o@x.test"},
                },
                {"id": "store-b", "name": "Store B", "owner": {"name": "Pau", "email": "p@x.test"}},
            ],
            **extra,
        }
    )


async def feedback_report(retailer: RetailerClient, **params: Any) -> dict[str, Any]:
    response = await retailer.get("/v1/reports/feedback", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


@dataclass
class Seeder:
    """Rows of one retailer, added to one session, with unique ids and workflow ids."""

    retailer_id: str
    n: int = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def answer(
        self, scale: str, score: int, kind: str, at: datetime, unit: str = "store-a"
    ) -> FeedbackAnswer:
        i = self._next()
        return FeedbackAnswer(
            retailer_id=self.retailer_id,
            idempotency_key=f"a-{i}",
            channel="web",
            scale=scale,
            score=score,
            business_unit=unit,
            answered_at=at,
            kind=kind,
            severity="normal" if kind == "detractor" else None,
        )

    def case(
        self,
        opened_at: datetime,
        *,
        unit: str = "store-a",
        severity: str = "normal",
        outcome: str | None = None,
        contact_after: timedelta | None = None,
        root_cause: str | None = None,
        won_back: bool | None = None,
        customer_id: int | None = None,
    ) -> FeedbackCase:
        i = self._next()
        return FeedbackCase(
            retailer_id=self.retailer_id,
            workflow_id=f"case-{self.retailer_id}-{i}",
            customer_id=customer_id,
            answer_id=i,
            business_unit=unit,
            severity=severity,
            opened_at=opened_at,
            first_contact_at=opened_at + contact_after if contact_after is not None else None,
            contact_outcome=outcome,
            root_cause=root_cause,
            won_back=won_back,
        )

    def task(
        self,
        case: FeedbackCase | None,
        kind: str,
        *,
        status: str = "done",
        level: int = 0,
        case_id: str | None = None,
    ) -> HumanTask:
        i = self._next()
        workflow_id = case.workflow_id if case else f"cart-{self.retailer_id}-c{i}"
        return HumanTask(
            id=f"{workflow_id}/task-{i}",
            retailer_id=self.retailer_id,
            workflow_id=workflow_id,
            kind=kind,
            title=kind,
            queue="default",
            status=status,
            case_id=case_id if case_id is not None else (str(case.id) if case else None),
            cart_id=None if case else f"c{i}",
            escalation_level=level,
            due_at=SINCE + timedelta(days=5),
            completed_at=SINCE + timedelta(days=5) if status == "done" else None,
        )

    def escalation(self, task: HumanTask, level: int, case_id: int | None) -> Escalation:
        return Escalation(
            retailer_id=self.retailer_id,
            task_id=task.id,
            case_id=case_id,
            cart_id=task.cart_id,
            level=level,
            queue="default",
            at=SINCE + timedelta(days=5),
        )


# --- (1) the deck's own numbers --------------------------------------------------------------


async def test_the_decks_roi_table_from_the_retailers_own_data(stack: Stack) -> None:
    """~1,000 negative answers a month; without the loop ~10 get a personal intervention, with
    it ~500; 5% of those are won back; at $1,000 a year each: $500 vs $25,000 a month."""
    retailer = await stack.retailer()
    seed = Seeder(retailer.id)
    async with session_scope(stack.sessions) as session:
        await save_rules(session, retailer_id=retailer.id, rules=rules())  # the defaults
        customers = [Customer(retailer_id=retailer.id, email=f"c{i}@x.test") for i in range(25)]
        session.add_all(customers)
        await session.flush()
        at = [SINCE + timedelta(minutes=40 * i) for i in range(1000)]  # spread over 28 days
        session.add_all(seed.answer("nps", i % 7, "detractor", at[i]) for i in range(1000))
        session.add_all(
            seed.case(
                at[i],
                outcome="reached" if i < 500 else ("not_reached" if i < 800 else "refused"),
                contact_after=timedelta(hours=2) if i < 500 else None,
                won_back=True if i < 25 else (False if i < 500 else None),
                customer_id=customers[i].id if i < 25 else None,
            )
            for i in range(1000)
        )

    figures = await feedback_report(retailer, **PERIOD)

    assert (figures["answers"], figures["cases_opened"], figures["contact_rate"]) == (
        1000,
        1000,
        0.5,
    )
    assert (figures["customers_won_back"], figures["revenue_won_back"]) == (25, 25000.0)
    assert figures["median_time_to_first_contact_hours"] == 2.0
    assert figures["roi"] == {
        "months": 1.0,
        "annual_revenue_per_customer": 1000.0,
        "baseline_intervention_rate": 0.01,
        "without_closed_loop": {
            "negative_answers_per_month": 1000.0,
            "personal_interventions_per_month": 10.0,
            "won_back_rate": 0.05,
            "customers_won_back_per_month": 0.5,
            "revenue_won_back_per_month": 500.0,
        },
        "with_closed_loop": {
            "negative_answers_per_month": 1000.0,
            "personal_interventions_per_month": 500.0,
            "won_back_rate": 0.05,
            "customers_won_back_per_month": 25.0,
            "revenue_won_back_per_month": 25000.0,
        },
        "net_revenue_won_back_per_month": 24500.0,
    }


# --- (2) a small hand-made set --------------------------------------------------------------


async def seed_small_set(stack: Stack, retailer_id: str) -> dict[str, FeedbackCase]:
    """Store A and store B, annual revenue per customer $1,200, baseline 10%.

    Answers in the period (NPS: standard bands, whatever ``kind`` says):
      A: NPS 10 9 8 6 3 0 (2 promoters, 3 detractors); CSAT 5 4 2 1 (2 of 4 satisfied).
      B: NPS 10 10 7 (7 is a hot-keyword detractor, still passive for NPS); CSAT 4 5 5.
      Detractor answers (kind): A 5, B 1. Outside: one before ``since``, one at ``until``.
    Cases opened in the period (hours to first contact in brackets):
      A: c1 hot reached (1) delivery_late won back (customer 1)
         c2 normal reached (3) delivery_late not won back
         c3 normal not_reached
         c4 normal refused (8)
         c5 hot reached (4) product_defect won back (customer 1 again)
      B: c6 normal reached (1.5) pricing won back (customer 2)
         c7 normal reached (0.5) delivery_late not won back
         c9 normal refused (20)
      Outside: c8 in store A, before ``since``, reached and won back.
    Case tasks: c1 three done (one escalated once), c2 one done + one open escalated twice,
    c3 one cancelled escalated, c6 two done; a cart task done late; c8's task done late.
    Escalations: c1 one, c2 two, c3 one; c8 one and a cart's one don't count.
    """
    seed = Seeder(retailer_id)
    day = SINCE + timedelta(days=1)
    async with session_scope(stack.sessions) as session:
        await save_rules(
            session,
            retailer_id=retailer_id,
            rules=rules(annual_revenue_per_customer=1200, baseline_intervention_rate=0.1),
        )
        one, two = Customer(retailer_id=retailer_id), Customer(retailer_id=retailer_id)
        session.add_all([one, two])
        await session.flush()

        def answers(unit: str, scale: str, scores: list[tuple[int, str]]) -> None:
            session.add_all(seed.answer(scale, s, kind, day, unit) for s, kind in scores)

        p, n, d = "promoter", "passive", "detractor"
        answers("store-a", "nps", [(10, p), (9, p), (8, n), (6, d), (3, d), (0, d)])
        answers("store-a", "csat", [(5, p), (4, n), (2, d), (1, d)])
        answers("store-b", "nps", [(10, p), (10, p), (7, d)])
        answers("store-b", "csat", [(4, n), (5, p), (5, p)])
        session.add(seed.answer("nps", 0, d, SINCE - timedelta(seconds=1)))
        session.add(seed.answer("nps", 10, p, UNTIL))

        h = timedelta(hours=1)
        cases = {
            "c1": seed.case(day, severity="hot", outcome="reached", contact_after=h,
                            root_cause="delivery_late", won_back=True, customer_id=one.id),
            "c2": seed.case(day, outcome="reached", contact_after=3 * h,
                            root_cause="delivery_late", won_back=False),
            "c3": seed.case(day, outcome="not_reached"),
            "c4": seed.case(day, outcome="refused", contact_after=8 * h),
            "c5": seed.case(day, severity="hot", outcome="reached", contact_after=4 * h,
                            root_cause="product_defect", won_back=True, customer_id=one.id),
            "c6": seed.case(day, unit="store-b", outcome="reached", contact_after=1.5 * h,
                            root_cause="pricing", won_back=True, customer_id=two.id),
            "c7": seed.case(day, unit="store-b", outcome="reached", contact_after=0.5 * h,
                            root_cause="delivery_late", won_back=False),
            "c9": seed.case(day, unit="store-b", outcome="refused", contact_after=20 * h),
            "c8": seed.case(SINCE - timedelta(days=2), outcome="reached", contact_after=h,
                            root_cause="product_defect", won_back=True, customer_id=two.id),
        }  # fmt: skip
        session.add_all(cases.values())
        await session.flush()
        c = cases
        tasks = {
            "c1 contact": seed.task(c["c1"], "contact_customer"),
            "c1 root": seed.task(c["c1"], "root_cause", level=1),
            "c1 resolution": seed.task(c["c1"], "resolution"),
            "c2 contact": seed.task(c["c2"], "contact_customer"),
            "c2 root": seed.task(c["c2"], "root_cause", status="open", level=2),
            "c3 contact": seed.task(c["c3"], "contact_customer", status="cancelled", level=1),
            "c6 contact": seed.task(c["c6"], "contact_customer"),
            "c6 resolution": seed.task(c["c6"], "resolution"),
            "c8 contact": seed.task(c["c8"], "contact_customer", level=1),
            "cart call": seed.task(None, "call_shopper", level=1),
        }
        session.add_all(tasks.values())
        t = tasks
        session.add_all(
            [
                seed.escalation(t["c1 root"], 1, c["c1"].id),
                seed.escalation(t["c2 root"], 1, c["c2"].id),
                seed.escalation(t["c2 root"], 2, c["c2"].id),
                seed.escalation(t["c3 contact"], 1, c["c3"].id),
                seed.escalation(t["c8 contact"], 1, c["c8"].id),
                seed.escalation(t["cart call"], 1, None),
            ]
        )
    return cases


SMALL_SET_FIGURES = {
    "answers": 16,
    "by_scale": {"nps": 9, "csat": 7},
    "nps": 11.1,  # (4 promoters - 3 detractors) / 9
    "csat": 0.7143,  # 5 of 7
    "csat_mean": 3.71,  # 26 / 7
    "cases_opened": 8,
    "cases_by_severity": {"normal": 6, "hot": 2},
    "contact_rate": 0.625,  # 5 of 8
    "median_time_to_first_contact_hours": 3.0,  # 0.5 1 1.5 [3] 4 8 20
    "sla_adherence": 0.8333,  # 5 of 6 done tasks
    "sla_breaches": 4,
    "root_causes": [
        {"category": "delivery_late", "cases": 3, "share": 0.6, "cumulative_share": 0.6},
        {"category": "pricing", "cases": 1, "share": 0.2, "cumulative_share": 0.8},
        {"category": "product_defect", "cases": 1, "share": 0.2, "cumulative_share": 1.0},
    ],
    "customers_won_back": 2,  # customer 1 twice, customer 2
    "revenue_won_back": 2400.0,
}


async def test_small_set_by_hand(stack: Stack) -> None:
    retailer = await stack.retailer()
    await seed_small_set(stack, retailer.id)

    figures = await feedback_report(retailer, **PERIOD)

    assert {k: figures[k] for k in SMALL_SET_FIGURES} == SMALL_SET_FIGURES
    assert figures["business_unit"] is None
    assert figures["roi"] == {
        "months": 1.0,
        "annual_revenue_per_customer": 1200.0,
        "baseline_intervention_rate": 0.1,
        "without_closed_loop": {
            "negative_answers_per_month": 6.0,
            "personal_interventions_per_month": 0.6,
            "won_back_rate": 0.6,  # 3 won back of 5 reached
            "customers_won_back_per_month": 0.36,
            "revenue_won_back_per_month": 432.0,
        },
        "with_closed_loop": {
            "negative_answers_per_month": 6.0,
            "personal_interventions_per_month": 5.0,
            "won_back_rate": 0.6,
            "customers_won_back_per_month": 3.0,
            "revenue_won_back_per_month": 3600.0,
        },
        "net_revenue_won_back_per_month": 3168.0,
    }

    # Twice as long (forward, so the answer at the old ``until`` joins): per month halves.
    longer = await feedback_report(
        retailer, since=SINCE.isoformat(), until=(UNTIL + timedelta(days=30)).isoformat()
    )
    assert (longer["answers"], longer["roi"]["months"]) == (17, 2.0)
    assert longer["roi"]["with_closed_loop"]["negative_answers_per_month"] == 3.0
    assert longer["roi"]["with_closed_loop"]["personal_interventions_per_month"] == 2.5


async def test_business_unit_filters_everything(stack: Stack) -> None:
    retailer = await stack.retailer()
    await seed_small_set(stack, retailer.id)

    a = await feedback_report(retailer, business_unit="store-a", **PERIOD)
    b = await feedback_report(retailer, business_unit="store-b", **PERIOD)
    nowhere = await feedback_report(retailer, business_unit="store-z", **PERIOD)

    assert {k: a[k] for k in SMALL_SET_FIGURES} == {
        "answers": 10,
        "by_scale": {"nps": 6, "csat": 4},
        "nps": -16.7,  # (2 - 3) / 6
        "csat": 0.5,
        "csat_mean": 3.0,
        "cases_opened": 5,
        "cases_by_severity": {"normal": 3, "hot": 2},
        "contact_rate": 0.6,
        "median_time_to_first_contact_hours": 3.5,  # 1 [3 4] 8
        "sla_adherence": 0.75,  # c1's three and c2's one
        "sla_breaches": 4,
        "root_causes": [
            {"category": "delivery_late", "cases": 2, "share": 0.6667, "cumulative_share": 0.6667},
            {"category": "product_defect", "cases": 1, "share": 0.3333, "cumulative_share": 1.0},
        ],
        "customers_won_back": 1,
        "revenue_won_back": 1200.0,
    }
    assert a["business_unit"] == "store-a"
    assert a["roi"]["with_closed_loop"] == {
        "negative_answers_per_month": 5.0,
        "personal_interventions_per_month": 3.0,
        "won_back_rate": 0.6667,
        "customers_won_back_per_month": 2.0,
        "revenue_won_back_per_month": 2400.0,
    }
    assert {k: b[k] for k in SMALL_SET_FIGURES} == {
        "answers": 6,
        "by_scale": {"nps": 3, "csat": 3},
        "nps": 66.7,
        "csat": 1.0,
        "csat_mean": 4.67,
        "cases_opened": 3,
        "cases_by_severity": {"normal": 3, "hot": 0},
        "contact_rate": 0.6667,
        "median_time_to_first_contact_hours": 1.5,  # 0.5 [1.5] 20
        "sla_adherence": 1.0,
        "sla_breaches": 0,
        "root_causes": [
            {"category": "delivery_late", "cases": 1, "share": 0.5, "cumulative_share": 0.5},
            {"category": "pricing", "cases": 1, "share": 0.5, "cumulative_share": 1.0},
        ],
        "customers_won_back": 1,
        "revenue_won_back": 1200.0,
    }
    assert b["roi"]["without_closed_loop"]["negative_answers_per_month"] == 1.0
    assert {k: nowhere[k] for k in SMALL_SET_FIGURES} == {
        "answers": 0,
        "by_scale": {"nps": 0, "csat": 0},
        "nps": None,
        "csat": None,
        "csat_mean": None,
        "cases_opened": 0,
        "cases_by_severity": {"normal": 0, "hot": 0},
        "contact_rate": None,
        "median_time_to_first_contact_hours": None,
        "sla_adherence": None,
        "sla_breaches": 0,
        "root_causes": [],
        "customers_won_back": 0,
        "revenue_won_back": 0.0,
    }
    assert nowhere["roi"]["with_closed_loop"]["revenue_won_back_per_month"] == 0.0


# --- (3) tenant isolation --------------------------------------------------------------------


async def test_another_retailers_rows_do_not_count(stack: Stack) -> None:
    alpha, beta = await stack.retailer("Alpha"), await stack.retailer("Beta")
    alpha_cases = await seed_small_set(stack, alpha.id)
    seed = Seeder(beta.id)
    day = SINCE + timedelta(days=3)
    async with session_scope(stack.sessions) as session:  # Beta: no alert rules saved
        session.add_all(
            [
                seed.answer("nps", 2, "detractor", day),
                seed.answer("nps", 10, "promoter", day),
                seed.answer("csat", 1, "detractor", day, unit="store-b"),
            ]
        )
        mine = seed.case(
            day, outcome="reached", contact_after=timedelta(hours=6), root_cause="pricing",
            won_back=True,
        )  # fmt: skip
        session.add(mine)
        await session.flush()
        # Rows that name Alpha's case ids: Beta's all the same.
        c1 = alpha_cases["c1"]
        late = seed.task(mine, "contact_customer", level=3, case_id=str(c1.id))
        session.add_all([late, seed.escalation(late, 1, c1.id), seed.escalation(late, 2, mine.id)])

    figures = await feedback_report(alpha, **PERIOD)
    theirs = await feedback_report(beta, **PERIOD)

    assert {k: figures[k] for k in SMALL_SET_FIGURES} == SMALL_SET_FIGURES
    assert figures["roi"]["with_closed_loop"]["revenue_won_back_per_month"] == 3600.0
    assert {k: theirs[k] for k in SMALL_SET_FIGURES} == {
        "answers": 3,
        "by_scale": {"nps": 2, "csat": 1},
        "nps": 0.0,
        "csat": 0.0,
        "csat_mean": 1.0,
        "cases_opened": 1,
        "cases_by_severity": {"normal": 1, "hot": 0},
        "contact_rate": 1.0,
        "median_time_to_first_contact_hours": 6.0,
        "sla_adherence": 0.0,
        "sla_breaches": 1,
        "root_causes": [{"category": "pricing", "cases": 1, "share": 1.0, "cumulative_share": 1.0}],
        "customers_won_back": 1,  # a case without a customer id counts as one
        "revenue_won_back": 1000.0,  # no alert rules: the default $1,000
    }
    assert theirs["roi"]["baseline_intervention_rate"] == 0.01
    assert theirs["roi"]["without_closed_loop"]["personal_interventions_per_month"] == 0.02


# --- defaults and (4) bad periods ------------------------------------------------------------


async def test_default_period_is_the_last_30_days(stack: Stack) -> None:
    retailer = await stack.retailer()
    seed = Seeder(retailer.id)
    now = utcnow()
    async with session_scope(stack.sessions) as session:
        session.add_all(
            [
                seed.answer("nps", 9, "promoter", now - timedelta(days=1)),
                seed.answer("nps", 9, "promoter", now - timedelta(days=31)),
            ]
        )

    figures = await feedback_report(retailer)

    assert (figures["answers"], figures["nps"], figures["roi"]["months"]) == (1, 100.0, 1.0)
    until = datetime.fromisoformat(figures["until"])
    assert until - datetime.fromisoformat(figures["since"]) == timedelta(days=30)
    assert abs(until - now) < timedelta(minutes=1)


async def test_bad_periods_and_callers_are_rejected(stack: Stack, database_kind: str) -> None:
    retailer = await stack.retailer()
    cases: list[tuple[str, dict[str, str], str]] = [
        ("since after until", {"since": UNTIL.isoformat(), "until": SINCE.isoformat()}, "since"),
        ("empty period", {"since": SINCE.isoformat(), "until": SINCE.isoformat()}, "since"),
        ("out of range", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ("until before the default since", {"until": "0001-01-02T00:00:00Z"}, "since"),
        ("not a date", {"since": "last week"}, "since"),
        ("business unit too long", {"business_unit": "x" * 61}, "business_unit"),
    ]
    for name, params, fragment in cases:
        response = await retailer.get("/v1/reports/feedback", params=params)
        assert response.status_code == 422, (name, response.text)
        assert fragment in response.text, (name, response.text)

    nul = await retailer.get("/v1/reports/feedback", params={"business_unit": "store\x00a"})
    if database_kind == "postgres":  # PostgreSQL cannot compare text with a NUL in it
        assert nul.status_code == 422 and "business_unit" in nul.text, nul.text
    else:
        assert nul.status_code == 200 and nul.json()["answers"] == 0, nul.text

    anonymous = await stack.api.get("/v1/reports/feedback")
    assert anonymous.status_code == 401
