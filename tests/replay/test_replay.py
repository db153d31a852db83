"""Replays committed histories: a change that breaks running workflows fails here first.

There is at least one history per workflow type the worker runs (carts, feedback cases,
promoter thank-yous, surveys). To record them again after an intended change, run
``pytest tests/replay/test_replay.py --record-histories`` and commit the files (only with a
``workflow.patched`` guard if workflows of the old shape may still be running, or under a new
workflow type with the old files kept: ``*_v1.json`` are type ``CartRecoveryWorkflow``,
``*_v2.json`` type ``CartRecovery``, ``*_v3.json`` type ``CartRecoveryV3``, the other cart
histories the current ``CartRecoveryV4``).
"""

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from tests.carts.test_agent_calls_workflow import _complete, _open_task
from tests.conftest import Stack
from tests.feedback.test_case_workflow import _answer, _do, _result
from tests.feedback.test_case_workflow import _open_task as _open_case_task
from tests.feedback.test_case_workflow import _retailer as _feedback_retailer
from tests.support.helpers import ALL_CONSENT, SHOPPER, items
from winback.composition.worker import WORKFLOWS
from winback.platform.temporal import DATA_CONVERTER
from workflows.feedback.feedback_case import FeedbackCaseWorkflow
from workflows.feedback.promoter_thanks import PromoterThanksWorkflow
from workflows.feedback.survey import SurveyWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _workflow_type(recorded: dict[str, Any]) -> str:
    started = recorded["events"][0]["workflowExecutionStartedEventAttributes"]
    return str(started["workflowType"]["name"])


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_committed_histories_replay(path: Path) -> None:
    recorded = json.loads(path.read_text())
    workflow_id = recorded.pop("workflowId", path.stem)  # task ids are derived from it
    history = WorkflowHistory.from_json(workflow_id, recorded)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {_workflow_type(json.loads(p.read_text())) for p in HISTORIES.glob("*.json")}

    assert recorded == {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}


async def test_record_histories(stack: Stack, request: pytest.FixtureRequest) -> None:
    """Records the reference histories when asked to (``--record-histories``)."""
    if not request.config.getoption("--record-histories"):
        pytest.skip("pass --record-histories to record")
    await _record_carts(stack)
    await _record_feedback(stack)
    await _record_survey(stack)


async def _record_carts(stack: Stack) -> None:
    retailer = await stack.retailer()
    await retailer.event(
        "c2", "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c2", "order_placed", order={"order_id": "o-1", "value": 450.0})
    await retailer.result("c2")
    await _save(retailer.workflow("c2"), "cart_bought_before_abandonment")

    await retailer.event(
        "c1", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.event("c1", "exit_intent")
    await retailer.result("c1")
    await _save(retailer.workflow("c1"), "cart_full_cadence")

    await retailer.event(
        "c3", "item_added", items=items(450.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await _complete(retailer, await _open_task(retailer, "c3"), "voicemail", cart_id="c3")
    await _complete(
        retailer, await _open_task(retailer, "c3"), "reached_not_interested", cart_id="c3"
    )
    await retailer.result("c3")
    await _save(retailer.workflow("c3"), "cart_agent_call_declined")

    # The journey ended after its last step; the shopper then asked to be called back: the API
    # started a callback-only run of the same workflow id (this history).
    await retailer.event(
        "c4", "item_added", items=items(120.0), customer=SHOPPER, consent=ALL_CONSENT
    )
    await retailer.result("c4")
    await retailer.event("c4", "nudge_reply", reply="callback")
    await _complete(retailer, await _open_task(retailer, "c4"), "voicemail", cart_id="c4")
    await retailer.result("c4")
    await _save(retailer.workflow("c4"), "cart_callback_after_the_journey")


async def _record_feedback(stack: Stack) -> None:
    retailer = await _feedback_retailer(stack)

    # The whole loop: contact, root cause, resolution (won back), then the follow-up survey.
    won = await _answer(retailer, 3, "Delivery was two weeks late")
    wf = won["workflow_id"]
    await _do(retailer, wf, "contact_customer", "not_reached")
    await _do(retailer, wf, "contact_customer", "reached", notes="Called, she was upset")
    await _do(
        retailer,
        wf,
        "root_cause",
        "identified",
        notes="Courier lost the parcel",
        category="delivery_late",
        facts=["courier scan missing"],
    )
    await _do(retailer, wf, "resolution", "resolved", resolution_code="refund", won_back=True)
    async with asyncio.timeout(30):  # the survey goes out 7 days after the case closes
        while not [m for m in await retailer.outbox() if m["template"] == "follow_up_survey"]:
            await stack.env.sleep(timedelta(days=1))
    await _answer(retailer, 9, follow_up_of=won["case_id"])
    await _result(retailer, wf)
    await _save(_case(stack, wf), "case_resolved_won_back")

    # A hot case nobody picks up: reminded, escalated twice, then the customer refuses.
    hot = await _answer(retailer, 4, "I will call my lawyer", customer={"email": "bo@example.com"})
    await _open_case_task(retailer, hot["workflow_id"], "contact_customer")
    await stack.env.sleep(timedelta(hours=5))  # two 2-hour SLAs pass
    await _do(retailer, hot["workflow_id"], "contact_customer", "refused")
    await _result(retailer, hot["workflow_id"])
    await _save(_case(stack, hot["workflow_id"]), "case_escalated_then_refused")

    promoter = await _answer(retailer, 10, "Great service", customer={"email": "cy@example.com"})
    thanks = stack.client.get_workflow_handle_for(
        PromoterThanksWorkflow.run, f"thanks-{retailer.id}-{promoter['answer_id']}"
    )
    await thanks.result()
    await _save(thanks, "promoter_thanked")


async def _record_survey(stack: Stack) -> None:
    retailer = await _feedback_retailer(stack)
    response = await retailer.post(
        "/v1/surveys",
        {
            "idempotency_key": "survey-1",
            "channel": "sms",
            "customer": SHOPPER,
            "consent": {"sms": True},
        },
    )
    assert response.status_code == 201, response.text
    survey = stack.client.get_workflow_handle_for(
        SurveyWorkflow.run, response.json()["workflow_id"]
    )
    await survey.result()
    await _save(survey, "survey_sent_by_sms")


def _case(stack: Stack, workflow_id: str) -> WorkflowHandle[Any, Any]:
    return stack.client.get_workflow_handle_for(FeedbackCaseWorkflow.run, workflow_id)


async def _save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    history = await handle.fetch_history()
    recorded = {"workflowId": history.workflow_id, **json.loads(history.to_json())}
    (HISTORIES / f"{name}.json").write_text(json.dumps(recorded, indent=2))
