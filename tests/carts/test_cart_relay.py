"""The cart relay: first events answer after their commit, their workflow starts follow, and
no cart is lost when the relay never gets to one (the worker's sweep starts it)."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event as sa_event
from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tests.conftest import RetailerClient, Stack
from tests.support.api import cart, signals
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.carts.models import Cart
from winback.carts.redrive import redrive_pending_carts
from winback.carts.relay import CartRelay
from winback.carts.workflow_sync import tell_workflow
from winback.retailers.lookups import RetailerRef

pytestmark = pytest.mark.both_databases


@dataclass
class Recorded:
    """A ``RelayObserver`` that keeps what the relay reported."""

    tells: list[list[str]] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def told(self, actions: list[str], since: float) -> None:
        self.tells.append(actions)

    def left_to_sweep(self, reason: str) -> None:
        self.left.append(reason)


@pytest.fixture
async def retailer(stack: Stack) -> RetailerClient:
    return await stack.retailer()


def own_relay(stack: Stack, seen: Recorded, client: Client | None = None, **kw: int) -> CartRelay:
    """A second relay on the same database and server, started only when the test says."""
    return CartRelay(
        stack.sessions, client or stack.client, task_queue=stack.task_queue, observer=seen, **kw
    )


async def first_event(retailer: RetailerClient, cart_id: str) -> dict[str, object]:
    response = await retailer.post(
        f"/v1/carts/{cart_id}/events",
        {
            "event_id": f"{cart_id}-1",
            "type": "item_added",
            "items": items(40.0),
            "customer": SHOPPER,
            "consent": ALL_CONSENT,
        },
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def cart_row(stack: Stack, cart_id: str) -> Cart:
    async with stack.sessions() as session:
        return (await session.exec(select(Cart).where(Cart.cart_id == cart_id))).one()


async def workflow_status(retailer: RetailerClient, cart_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await retailer.workflow(cart_id).describe()).status
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND, err
        return None


def ref(retailer: RetailerClient) -> RetailerRef:
    return RetailerRef(id=retailer.id, name="Acme", country="US")


async def test_a_first_event_answers_queued_and_the_relay_starts_its_workflow(
    stack: Stack, retailer: RetailerClient
) -> None:
    told_before = REGISTRY.get_sample_value(
        "winback_cart_relay_outcomes_total", {"outcome": "told"}
    )

    accepted = await first_event(retailer, "c1")
    await stack.drain()

    assert accepted == {
        "cart_id": "c1",
        "duplicate": False,
        "workflow_id": f"cart-{retailer.id}-c1",
        "workflow_actions": ["queued"],
    }
    assert await workflow_status(retailer, "c1") == WorkflowExecutionStatus.RUNNING
    row = await cart_row(stack, "c1")
    assert (row.workflow_started, row.contact_signalled) == (True, True)
    told_after = REGISTRY.get_sample_value("winback_cart_relay_outcomes_total", {"outcome": "told"})
    assert told_after is not None and told_after >= (told_before or 0) + 1
    assert REGISTRY.get_sample_value("winback_cart_relay_depth") == 0


async def test_a_first_event_the_relay_never_ran_is_started_by_the_workers_sweep(
    stack: Stack, retailer: RetailerClient
) -> None:
    """The API stops (or crashes) after the 202 and before its relay told Temporal: the flags
    on the cart row are unsaid, and the worker's sweep starts the workflow."""
    await stack.relay.stop()

    accepted = await first_event(retailer, "c1")

    assert accepted["workflow_actions"] == ["queued"]
    assert (await cart_row(stack, "c1")).workflow_started is False
    assert await workflow_status(retailer, "c1") is None
    done = await redrive_pending_carts(
        stack.sessions, stack.client, task_queue=stack.task_queue, grace=timedelta(0)
    )
    assert done == {f"cart-{retailer.id}-c1": ["started"]}
    assert await workflow_status(retailer, "c1") == WorkflowExecutionStatus.RUNNING
    assert (await cart(retailer, "c1"))["workflow"]["stage"] == "active"


async def test_events_of_a_cart_waiting_in_the_relay_make_one_tell(
    stack: Stack, retailer: RetailerClient
) -> None:
    """The exit intent that follows a queued start is queued too (not signalled to a workflow
    that does not exist yet): one start, carrying the nudge."""
    await stack.relay.stop()  # the route's hand-overs go nowhere; ours are made by hand
    seen = Recorded()
    relay = own_relay(stack, seen)
    await first_event(retailer, "c1")
    nudge = await retailer.post("/v1/carts/c1/events", {"event_id": "n1", "type": "exit_intent"})
    assert nudge.json()["workflow_actions"] == ["queued"]
    pk = (await cart_row(stack, "c1")).id
    assert pk is not None

    assert relay.submit(ref(retailer), pk, 0.0) and relay.submit(ref(retailer), pk, 0.0)
    assert relay.depth == 1
    relay.start()
    await relay.drain()
    await relay.stop()

    assert seen.tells == [["started", "nudge_trigger"]]
    row = await cart_row(stack, "c1")
    assert (row.workflow_started, row.nudge_signalled) == (True, True)
    assert await signals(retailer, "c1") == ["nudge_trigger"]


async def test_an_inline_tell_of_a_queued_cart_starts_it_and_leaves_the_relay_nothing(
    stack: Stack, retailer: RetailerClient
) -> None:
    """The race of a queued start with an inline tell (a platform webhook, the sweep): the
    inline one decides from the flags, so it makes the start itself (``USE_EXISTING``), and
    the relay's tell that follows finds nothing unsaid: one workflow, one nudge signal."""
    await stack.relay.stop()
    seen = Recorded()
    relay = own_relay(stack, seen)
    await first_event(retailer, "c1")
    await retailer.post("/v1/carts/c1/events", {"event_id": "n1", "type": "exit_intent"})
    row = await cart_row(stack, "c1")
    assert row.id is not None
    relay.submit(ref(retailer), row.id, 0.0)

    async with stack.sessions() as session:
        inline = await tell_workflow(
            session,
            stack.client,
            task_queue=stack.task_queue,
            retailer=ref(retailer),
            cart=await session.get(Cart, row.id),  # type: ignore[arg-type]
        )
    relay.start()
    await relay.drain()
    await relay.stop()

    assert inline == ["started", "nudge_trigger"]
    assert seen.tells == [[]]
    assert await signals(retailer, "c1") == ["nudge_trigger"]
    assert await workflow_status(retailer, "c1") == WorkflowExecutionStatus.RUNNING


async def test_a_cart_bought_while_its_start_was_queued_never_starts(
    stack: Stack, retailer: RetailerClient
) -> None:
    await stack.relay.stop()
    await first_event(retailer, "c1")

    ordered = await retailer.post(
        "/v1/carts/c1/events",
        {"event_id": "o1", "type": "order_placed", "order": {"order_id": "o-1", "value": 40.0}},
    )

    assert ordered.json()["workflow_actions"] == []
    done = await redrive_pending_carts(
        stack.sessions, stack.client, task_queue=stack.task_queue, grace=timedelta(0)
    )
    assert done == {}
    assert await workflow_status(retailer, "c1") is None


async def test_a_tell_that_fails_is_logged_and_left_to_the_sweep(
    stack: Stack, retailer: RetailerClient, caplog: pytest.LogCaptureFixture
) -> None:
    await stack.relay.stop()
    await first_event(retailer, "c1")
    row = await cart_row(stack, "c1")
    assert row.id is not None
    seen = Recorded()
    dead = await Client.connect("127.0.0.1:1", lazy=True)  # nothing listens on port 1
    relay = own_relay(stack, seen, client=dead)

    relay.submit(ref(retailer), row.id, 0.0)
    with caplog.at_level(logging.WARNING, logger="winback.carts.relay"):
        relay.start()
        await relay.drain()
        await relay.stop()

    assert (seen.tells, seen.left) == ([], ["failed"])
    [line] = [r for r in caplog.records if r.name == "winback.carts.relay"]
    assert "c1" in line.getMessage() and "sweep" in line.getMessage()
    assert (line.retailer_id, line.cart_id) == (retailer.id, "c1")  # type: ignore[attr-defined]
    assert (await cart_row(stack, "c1")).workflow_started is False
    done = await redrive_pending_carts(
        stack.sessions, stack.client, task_queue=stack.task_queue, grace=timedelta(0)
    )
    assert done == {f"cart-{retailer.id}-c1": ["started"]}


async def test_a_full_relay_refuses_and_leaves_the_cart_to_the_sweep(stack: Stack) -> None:
    seen = Recorded()
    relay = own_relay(stack, seen, max_queued=1)
    retailer = RetailerRef(id="r", name="R", country="US")

    assert relay.submit(retailer, 1, 0.0) is True
    assert relay.submit(retailer, 1, 0.0) is True  # the same cart: coalesced, no room needed
    assert relay.submit(retailer, 2, 0.0) is False
    assert (relay.depth, seen.left) == (1, ["full"])
    await relay.stop(drain_for=0)  # never started: nothing told, the one cart counted
    assert (relay.depth, seen.left) == (0, ["full", "stopped"])


async def test_carts_handed_over_together_are_started_with_one_read_and_one_write(
    stack: Stack, retailer: RetailerClient
) -> None:
    """Twelve first events waiting in the relay: one read of their rows, twelve starts sent
    side by side, one write of their flags (``_tell_many``), and each cart told once."""
    await stack.relay.stop()
    carts = [f"t{n}" for n in range(12)]
    for cart_id in carts:
        await first_event(retailer, cart_id)
    pks = [(await cart_row(stack, c)).id for c in carts]
    seen = Recorded()
    relay = own_relay(stack, seen, concurrency=1, batch=16)
    statements: list[str] = []
    engine = stack.sessions.kw["bind"].sync_engine

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()[:3]).upper())

    for pk in pks:
        assert pk is not None and relay.submit(ref(retailer), pk, 0.0)
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        relay.start()
        await relay.drain()
        await relay.stop()
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)

    assert seen.tells == [["started"]] * 12 and seen.left == []
    assert sum(s.startswith("SELECT CART.ID") for s in statements) == 1
    assert sum(s.startswith("UPDATE CART") for s in statements) == 1
    for cart_id in carts:
        assert await workflow_status(retailer, cart_id) == WorkflowExecutionStatus.RUNNING
        row = await cart_row(stack, cart_id)
        assert (row.workflow_started, row.contact_signalled) == (True, True)
