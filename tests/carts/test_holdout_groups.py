"""Holdout groups: the bucket is stable per shopper, the split matches the percentage, and a cart's
group is decided once, before its first touch, from the cadence of that moment."""

from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from tests.support.helpers import ALL_CONSENT, items
from winback.carts.cadence import CadenceIn
from winback.carts.cadence_store import save_cadence
from winback.carts.events import CartEventIn, record_event
from winback.carts.holdout import BUCKETS, HELD_OUT, TREATED, group_for, holdout_bucket
from winback.carts.models import Cart
from winback.platform.db import SessionFactory, session_scope
from winback.retailers.models import Retailer

pytestmark = pytest.mark.both_databases
STEPS: list[dict[str, Any]] = [{"channel": "onsite"}, {"channel": "email", "delay": "1h"}]


def test_the_bucket_is_stable_and_depends_on_the_salt_and_the_retailer() -> None:
    first = holdout_bucket("salt-a", "shop", "customer:7")
    assert first == holdout_bucket("salt-a", "shop", "customer:7")
    assert 0 <= first < BUCKETS
    others = {
        holdout_bucket("salt-b", "shop", "customer:7"),
        holdout_bucket("salt-a", "store", "customer:7"),
        holdout_bucket("salt-a", "shop", "customer:8"),
    }
    assert len({first, *others}) == 4  # another salt, store or shopper: another draw


def test_the_split_is_close_to_the_percentage() -> None:
    """20,000 shoppers at 10%: the binomial's standard deviation is 0.21 points, so 9-11% is
    five of them either side (a fixed salt: the same answer on every run)."""
    shoppers = 20_000
    held = sum(
        group_for(holdout_bucket("fixed-salt", "shop", f"customer:{i}"), 10) == HELD_OUT
        for i in range(shoppers)
    )
    assert 0.09 < held / shoppers < 0.11


def test_the_percentage_sets_the_threshold_and_zero_means_no_experiment() -> None:
    assert group_for(0, 0) is None
    assert group_for(9999, 0) is None
    assert group_for(999, 10) == HELD_OUT
    assert group_for(1000, 10) == TREATED
    assert group_for(0, 0.01) == HELD_OUT and group_for(1, 0.01) == TREATED


def test_the_cadence_bounds_holdouts_and_attribution_windows() -> None:
    with pytest.raises(ValidationError):
        CadenceIn.model_validate({"steps": STEPS, "holdout_percent": 51})
    with pytest.raises(ValidationError):
        CadenceIn.model_validate({"steps": STEPS, "holdout_percent": -1})
    with pytest.raises(ValidationError):
        CadenceIn.model_validate({"steps": STEPS, "attribution_windows": {"fax": "1d"}})
    with pytest.raises(ValidationError):
        CadenceIn.model_validate({"steps": STEPS, "attribution_windows": {"sms": "90d"}})
    cadence = CadenceIn.model_validate(
        {"steps": STEPS, "attribution_windows": {"email": "3d", "sms": "1d"}}
    )
    assert cadence.holdout_percent == 0
    assert cadence.window_for("sms").days == 1 and cadence.window_for("email").days == 3
    assert cadence.window_for("voice").days == 7  # unset: the cadence's attribution_window


async def _retailer(sessions: SessionFactory, percent: float) -> None:
    async with session_scope(sessions) as session:
        session.add(Retailer(id="shop", name="Shop", webhook_secret="s", holdout_salt="fixed"))
        await session.flush()
        cadence = CadenceIn.model_validate({"steps": STEPS, "holdout_percent": percent})
        await save_cadence(session, retailer_id="shop", cadence=cadence)


async def _event(sessions: SessionFactory, cart_id: str, **fields: Any) -> None:
    async with session_scope(sessions) as session:
        shop = await session.get(Retailer, "shop")
        assert shop is not None
        event = CartEventIn.model_validate(
            {"event_id": f"{cart_id}-{fields.pop('n', 1)}", "items": items(40.0), **fields}
        )
        await record_event(session, retailer=shop, cart_id=cart_id, event=event)


async def _carts(sessions: SessionFactory) -> dict[str, Cart]:
    async with sessions() as session:
        return {c.cart_id: c for c in (await session.exec(select(Cart))).all()}


async def test_a_new_retailer_gets_a_secret_salt_of_its_own(sessions: SessionFactory) -> None:
    async with session_scope(sessions) as session:
        session.add(Retailer(id="one", name="One", webhook_secret="s"))
        session.add(Retailer(id="two", name="Two", webhook_secret="s"))
    async with sessions() as session:
        one, two = await session.get(Retailer, "one"), await session.get(Retailer, "two")
        assert one is not None and two is not None
        assert one.holdout_salt and two.holdout_salt and one.holdout_salt != two.holdout_salt


async def test_a_shopper_keeps_one_group_across_carts_and_the_split_follows_the_percentage(
    sessions: SessionFactory,
) -> None:
    await _retailer(sessions, 50)
    for shopper in range(40):
        for cart in ("a", "b"):
            await _event(
                sessions,
                f"{cart}{shopper}",
                type="item_added",
                customer={"email": f"shopper{shopper}@example.com"},
                consent=ALL_CONSENT,
            )
    carts = await _carts(sessions)
    groups = {s: {carts[f"a{s}"].holdout_group, carts[f"b{s}"].holdout_group} for s in range(40)}
    assert all(len(g) == 1 for g in groups.values()), "a shopper's carts split across groups"
    held = sum(1 for g in groups.values() if g == {HELD_OUT})
    assert 10 <= held <= 30  # 50% of 40: 20 ± 3 standard deviations
    assert all(c.holdout_bucket is not None for c in carts.values())


async def test_the_group_waits_for_a_first_possible_touch_and_then_never_changes(
    sessions: SessionFactory,
) -> None:
    await _retailer(sessions, 50)
    await _event(sessions, "c1", type="item_added")  # no contact, no nudge: nothing to decide
    assert (await _carts(sessions))["c1"].holdout_bucket is None

    await _event(sessions, "c1", type="exit_intent", n=2)  # an on-site nudge is due
    decided = (await _carts(sessions))["c1"]
    assert decided.holdout_bucket is not None and decided.holdout_group in (HELD_OUT, TREATED)

    # The retailer turns the holdout off: the cart keeps what was decided.
    async with session_scope(sessions) as session:
        await save_cadence(
            session, retailer_id="shop", cadence=CadenceIn.model_validate({"steps": STEPS})
        )
    await _event(sessions, "c1", type="item_added", n=3, customer={"email": "x@example.com"})
    again = (await _carts(sessions))["c1"]
    assert (again.holdout_bucket, again.holdout_group) == (
        decided.holdout_bucket,
        decided.holdout_group,
    )


async def test_without_a_holdout_a_cart_is_in_no_group(sessions: SessionFactory) -> None:
    await _retailer(sessions, 0)
    await _event(sessions, "c1", type="item_added", customer={"email": "a@example.com"})
    cart = (await _carts(sessions))["c1"]
    assert cart.holdout_bucket is not None and cart.holdout_group is None
