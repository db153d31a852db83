"""Replays committed histories: a change that breaks running carts fails here first.

To record a new history after an intended change, run
``python -m pytest tests/workflows/test_replay.py --record-histories`` and commit the files
(only with a ``workflow.patched`` guard if carts of the old shape may still be running).
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import Stack
from tests.helpers import ALL_CONSENT, SHOPPER, items
from winback.temporal import DATA_CONVERTER
from workflows.cart_recovery import CartRecoveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_histories_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[CartRecoveryWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)


async def test_record_histories(stack: Stack, request: pytest.FixtureRequest) -> None:
    """Records the reference histories when asked to (``--record-histories``)."""
    if not request.config.getoption("--record-histories"):
        pytest.skip("pass --record-histories to record")
    retailer = await stack.retailer()
    await retailer.event(
        "c1", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c1", "exit_intent")
    await retailer.result("c1")
    history = await retailer.workflow("c1").fetch_history()
    (HISTORIES / "cart_full_cadence.json").write_text(history.to_json())

    await retailer.event(
        "c2", "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c2", "order_placed", order={"order_id": "o-1", "value": 450.0})
    await retailer.result("c2")
    history = await retailer.workflow("c2").fetch_history()
    (HISTORIES / "cart_bought_before_abandonment.json").write_text(history.to_json())
