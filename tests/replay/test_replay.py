"""Replays committed histories: a change that breaks running carts fails here first.

To record a new history after an intended change, run
``python -m pytest tests/workflows/test_replay.py --record-histories`` and commit the files
(only with a ``workflow.patched`` guard if carts of the old shape may still be running).
"""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.carts.test_agent_calls_workflow import _complete, _open_task
from tests.conftest import RetailerClient, Stack
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.platform.temporal import DATA_CONVERTER
from workflows.carts.cart_recovery import CartRecoveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_histories_replay(path: Path) -> None:
    recorded = json.loads(path.read_text())
    workflow_id = recorded.pop("workflowId", path.stem)  # task ids are derived from it
    history = WorkflowHistory.from_json(workflow_id, recorded)
    replayer = Replayer(workflows=[CartRecoveryWorkflow], data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)


async def test_record_histories(stack: Stack, request: pytest.FixtureRequest) -> None:
    """Records the reference histories when asked to (``--record-histories``)."""
    if not request.config.getoption("--record-histories"):
        pytest.skip("pass --record-histories to record")
    retailer = await stack.retailer()
    await retailer.event(
        "c2", "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c2", "order_placed", order={"order_id": "o-1", "value": 450.0})
    await retailer.result("c2")
    await _save(retailer, "c2", "cart_bought_before_abandonment")

    await retailer.event(
        "c1", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c1", "exit_intent")
    await retailer.result("c1")
    await _save(retailer, "c1", "cart_full_cadence")

    await retailer.event(
        "c3", "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await _complete(retailer, await _open_task(retailer, "c3"), "voicemail", cart_id="c3")
    await _complete(
        retailer, await _open_task(retailer, "c3"), "reached_not_interested", cart_id="c3"
    )
    await retailer.result("c3")
    await _save(retailer, "c3", "cart_agent_call_declined")


async def _save(retailer: RetailerClient, cart_id: str, name: str) -> None:
    history = await retailer.workflow(cart_id).fetch_history()
    recorded = {"workflowId": history.workflow_id, **json.loads(history.to_json())}
    (HISTORIES / f"{name}.json").write_text(json.dumps(recorded, indent=2))
