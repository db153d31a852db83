"""A small store whose every dashboard figure is known by hand, seeded straight into the
database (as the report tests do): carts on two days with their messages and orders, answers
and cases in two business units, and the alert rules that name the units.

Day 1 (3 carts started): c1 abandoned, emailed 1 h later, recovered by that email (100.00);
c2 abandoned, emailed 30 h later (too late for "within 24 h"), lost; c3 bought straight away.
Day 2 (2 started): c4 abandoned, nudged on site, texted 2 h later, recovered by the SMS
(50.00); c5 abandoned with no contact at all.
Feedback on day 1: store-a has NPS 10 and 3 and a hot case (delivery_late); store-b a CSAT 5
and a normal case whose root cause starts with "=" (a spreadsheet formula if not escaped).
"""

from datetime import UTC, date, datetime, timedelta

from winback.carts.models import Cart
from winback.customers.models import Customer
from winback.feedback.alert_rules import AlertRulesIn
from winback.feedback.alert_rules_store import save_rules
from winback.feedback.models import FeedbackAnswer, FeedbackCase
from winback.messaging.models import Message
from winback.platform.db import SessionFactory, session_scope
from winback.tasks.models import HumanTask

DAY1 = date(2026, 11, 2)
DAY2 = date(2026, 11, 3)
PERIOD = {"from": DAY1.isoformat(), "to": DAY2.isoformat()}
FORMULA_CAUSE = '=HYPERLINK("x")'


def at(day: date, hours: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def unit_rules() -> AlertRulesIn:
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
        }
    )


async def seed_store(sessions: SessionFactory, retailer_id: str, *, scale: float = 1.0) -> None:
    """The data set above for ``retailer_id``; ``scale`` multiplies the order values (another
    retailer's figures then differ from this one's)."""
    async with session_scope(sessions) as session:
        await save_rules(session, retailer_id=retailer_id, rules=unit_rules())
        shopper = Customer(retailer_id=retailer_id, email="ana@x.test", phone="+34612000001")
        session.add(shopper)
        await session.flush()

        def cart(name: str, day: date, **fields: object) -> Cart:
            return Cart(
                retailer_id=retailer_id,
                cart_id=name,
                customer_id=shopper.id,
                workflow_started=True,
                created_at=at(day, 9),
                **fields,  # type: ignore[arg-type]
            )

        def message(name: str, channel: str, step: int, when: datetime) -> Message:
            return Message(
                retailer_id=retailer_id,
                cart_id=name,
                channel=channel,
                step_index=step,
                status="sent",
                dedupe_key=f"{retailer_id}-{name}-{step}",
                created_at=when,
            )

        session.add_all(
            [
                cart(
                    "c1",
                    DAY1,
                    abandoned_at=at(DAY1, 10),
                    status="ordered",
                    recovered_step=1,
                    recovered_channel="email",
                    order_value=100.0 * scale,
                ),
                cart("c2", DAY1, abandoned_at=at(DAY1, 10), status="abandoned"),
                cart("c3", DAY1, status="ordered", order_value=30.0 * scale),
                cart(
                    "c4",
                    DAY2,
                    abandoned_at=at(DAY2, 10),
                    status="ordered",
                    recovered_step=2,
                    recovered_channel="sms",
                    order_value=50.0 * scale,
                ),
                cart("c5", DAY2, abandoned_at=at(DAY2, 10), status="abandoned"),
                message("c1", "email", 1, at(DAY1, 11)),
                message("c2", "email", 1, at(DAY1, 40)),
                message("c4", "onsite", 0, at(DAY2, 9.5)),
                message("c4", "sms", 2, at(DAY2, 12)),
            ]
        )

        def answer(n: int, unit: str, scale_: str, score: int, kind: str) -> FeedbackAnswer:
            return FeedbackAnswer(
                retailer_id=retailer_id,
                idempotency_key=f"a-{n}",
                channel="web",
                scale=scale_,
                score=score,
                business_unit=unit,
                answered_at=at(DAY1, 12 + n),
                kind=kind,
            )

        session.add_all(
            [
                answer(1, "store-a", "nps", 10, "promoter"),
                answer(2, "store-a", "nps", 3, "detractor"),
                answer(3, "store-b", "csat", 5, "promoter"),
                FeedbackCase(
                    retailer_id=retailer_id,
                    workflow_id=f"case-{retailer_id}-1",
                    answer_id=2,
                    business_unit="store-a",
                    severity="hot",
                    opened_at=at(DAY1, 14),
                    first_contact_at=at(DAY1, 16),
                    contact_outcome="reached",
                    root_cause="delivery_late",
                    won_back=True,
                ),
                FeedbackCase(
                    retailer_id=retailer_id,
                    workflow_id=f"case-{retailer_id}-2",
                    answer_id=3,
                    business_unit="store-b",
                    severity="normal",
                    opened_at=at(DAY1, 15),
                    root_cause=FORMULA_CAUSE,
                ),
            ]
        )


async def seed_busy_store(
    sessions: SessionFactory, retailer_id: str, *, first: date, days: int = 28
) -> None:
    """Four weeks of a store, made up deterministically (a fixed random seed), so the charts
    of a screenshot have something to draw: carts, their follow-ups and orders, answers in two
    units and the cases they opened with their root causes."""
    import random

    rng = random.Random(15)
    causes = ["delivery_late", "wrong_item", "damaged", "rude_staff", "price"]
    async with session_scope(sessions) as session:
        await save_rules(session, retailer_id=retailer_id, rules=unit_rules())
        shopper = Customer(retailer_id=retailer_id, email="busy@x.test", phone="+34612000002")
        session.add(shopper)
        await session.flush()
        n = 0
        for d in range(days):
            day = first + timedelta(days=d)
            for _ in range(rng.randint(18, 30)):
                n += 1
                name = f"b{n}"
                abandoned = rng.random() < 0.7
                recovered_by = rng.choice([None, None, "onsite", "email", "email", "sms"])
                steps = {"onsite": 0, "email": 1, "sms": 2}
                cart = Cart(
                    retailer_id=retailer_id,
                    cart_id=name,
                    customer_id=shopper.id,
                    workflow_started=True,
                    created_at=at(day, rng.uniform(7, 20)),
                    status="ordered" if abandoned and recovered_by else "abandoned",
                )
                if abandoned:
                    cart.abandoned_at = cart.created_at + timedelta(minutes=30)
                    session.add(
                        Message(
                            retailer_id=retailer_id,
                            cart_id=name,
                            channel="onsite",
                            step_index=0,
                            status="sent",
                            dedupe_key=f"{retailer_id}-{name}-0",
                            created_at=cart.abandoned_at,
                        )
                    )
                    if rng.random() < 0.85:
                        session.add(
                            Message(
                                retailer_id=retailer_id,
                                cart_id=name,
                                channel="email",
                                step_index=1,
                                status="sent",
                                dedupe_key=f"{retailer_id}-{name}-1",
                                created_at=cart.abandoned_at + timedelta(hours=rng.uniform(1, 30)),
                            )
                        )
                    if recovered_by == "sms" or rng.random() < 0.4:
                        session.add(
                            Message(
                                retailer_id=retailer_id,
                                cart_id=name,
                                channel="sms",
                                step_index=2,
                                status="sent",
                                dedupe_key=f"{retailer_id}-{name}-2",
                                created_at=cart.abandoned_at + timedelta(hours=26),
                            )
                        )
                    if recovered_by:
                        cart.recovered_channel = recovered_by
                        cart.recovered_step = steps[recovered_by]
                        cart.order_value = round(rng.uniform(30, 220), 2)
                session.add(cart)
            for _ in range(rng.randint(4, 10)):
                n += 1
                unit = rng.choice(["store-a", "store-b"])
                scale_ = rng.choice(["nps", "nps", "csat"])
                score = rng.randint(0, 10) if scale_ == "nps" else rng.randint(1, 5)
                bad = score <= 6 if scale_ == "nps" else score <= 2
                session.add(
                    FeedbackAnswer(
                        retailer_id=retailer_id,
                        idempotency_key=f"busy-{n}",
                        channel="web",
                        scale=scale_,
                        score=score,
                        business_unit=unit,
                        answered_at=at(day, rng.uniform(8, 21)),
                        kind="detractor" if bad else "promoter",
                    )
                )
                if bad:
                    opened = at(day, 21.5)
                    reached = rng.random() < 0.7
                    workflow_id = f"case-{retailer_id}-busy-{n}"
                    session.add(
                        HumanTask(
                            id=f"{workflow_id}/task-1",
                            retailer_id=retailer_id,
                            workflow_id=workflow_id,
                            kind="case_contact",
                            title="Contact the customer",
                            case_id=str(n),
                            queue="default",
                            status="done",
                            escalation_level=int(rng.random() < 0.15),
                            due_at=opened + timedelta(hours=8),
                            completed_at=opened + timedelta(hours=4),
                        )
                    )
                    session.add(
                        FeedbackCase(
                            retailer_id=retailer_id,
                            workflow_id=workflow_id,
                            answer_id=n,
                            business_unit=unit,
                            severity="hot" if score <= 2 else "normal",
                            opened_at=opened,
                            first_contact_at=opened + timedelta(hours=rng.uniform(0.5, 9))
                            if reached
                            else None,
                            contact_outcome="reached" if reached else "not_reached",
                            root_cause=rng.choices(causes, weights=[8, 5, 3, 1, 1])[0],
                            won_back=reached and rng.random() < 0.3,
                        )
                    )
