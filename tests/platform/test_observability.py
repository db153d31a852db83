"""Observability without a profiler: JSON log lines carry the ids, one trace runs from an API
request through the Temporal client into the workflow and its activities, and the ingestion
metrics count what came in."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import ExecuteActivityInput

from tests.conftest import ADMIN_TOKEN
from tests.conftest import test_settings as settings_for
from tests.support.api import eventually
from tests.support.helpers import SHOPPER, items
from tests.support.started_workflows import StartedWorkflows
from winback.composition.cli import log_format_for
from winback.composition.stack import build_app, running_worker
from winback.messaging.channels import ChannelAdapter
from winback.platform.db import SessionFactory
from winback.platform.logs import JsonFormatter, LogContextInterceptor, bind, configure_logging
from winback.platform.settings import Settings
from winback.platform.tracing import configure_tracing


@contextmanager
def json_lines(name: str = "winback.test") -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_log_line_is_json_with_the_bound_retailer_and_cart() -> None:
    with json_lines() as (log, out):
        with bind(retailer_id="acme", cart_id="c-1"):
            log.info("stored %s", "ev-1", extra={"event_id": "ev-1"})
        log.warning("outside")
    first, second = lines(out)
    assert first["message"] == "stored ev-1" and first["level"] == "info"
    assert (first["retailer_id"], first["cart_id"], first["event_id"]) == ("acme", "c-1", "ev-1")
    assert "retailer_id" not in second  # the binding ended with its block


def test_a_workflow_loggers_line_carries_workflow_and_run_ids() -> None:
    with json_lines() as (log, out):
        # What ``workflow.logger`` puts on its records.
        log.info(
            "abandoned",
            extra={
                "temporal_workflow": {
                    "workflow_id": "cart-acme-c-1",
                    "run_id": "run-1",
                    "workflow_type": "CartRecoveryWorkflow",
                }
            },
        )
    (line,) = lines(out)
    assert (line["workflow_id"], line["run_id"]) == ("cart-acme-c-1", "run-1")
    assert "temporal_workflow" not in line


async def test_an_activitys_lines_carry_its_workflow_run_retailer_and_cart() -> None:
    """Any logger inside an activity: the ids from ``activity.info()``, the retailer and cart
    from the activity's input (``LogContextInterceptor``, as the worker installs it)."""
    with json_lines() as (log, out):

        @activity.defn
        async def refresh(arg: dict[str, str]) -> None:
            log.info("refreshing")

        class Next:
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                return await refresh(*input.args)

        interceptor = LogContextInterceptor().intercept_activity(Next())  # type: ignore[arg-type]
        env = ActivityEnvironment()
        run_input = ExecuteActivityInput(
            fn=refresh,
            args=[{"retailer_id": "acme", "cart_id": "c-9"}],
            executor=None,
            headers={},
        )
        await env.run(interceptor.execute_activity, run_input)
    (line,) = lines(out)
    info = env.info
    assert (line["workflow_id"], line["run_id"]) == (info.workflow_id, info.workflow_run_id)
    assert line["activity_type"] == info.activity_type
    assert (line["retailer_id"], line["cart_id"]) == ("acme", "c-9")


def test_configure_logging_puts_json_on_the_root_handler() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        configure_logging("json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging("text")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], root.level = saved, level


def test_the_dev_stack_logs_text_and_the_services_json_unless_told() -> None:
    assert [log_format_for(c, Settings()) for c in ("dev", "api", "worker")] == [
        "text",
        "json",
        "json",
    ]
    assert log_format_for("dev", Settings(log_format="json")) == "json"
    assert log_format_for("api", Settings(log_format="text")) == "text"


def test_tracing_is_off_unless_asked() -> None:
    assert not configure_tracing("none", "x").enabled
    assert not configure_tracing(None, "x").interceptors
    console = configure_tracing("console", "x")
    assert console.enabled and console.interceptors
    console.shutdown()


async def test_one_trace_from_the_api_request_into_the_workflow_and_its_activity(
    fresh_time_skipping_env: WorkflowEnvironment,
    database_url: str,
    task_queue: str,
    sessions: SessionFactory,
    adapters: dict[str, ChannelAdapter],
) -> None:
    spans = InMemorySpanExporter()
    tracing = configure_tracing(None, "winback-test", processor=SimpleSpanProcessor(spans))
    # A server of its own: on the shared one, a later test's timers sometimes never fired
    # after this one (its workflows terminated with their worker gone).
    config = fresh_time_skipping_env.client.config()
    config["interceptors"] = [*config["interceptors"], *tracing.interceptors]
    started = StartedWorkflows()
    client = started.client(Client(**config))
    settings = settings_for(database_url, task_queue)
    app = build_app(settings, temporal=client, tracing=tracing)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
        running_worker(client, settings, sessions, adapters),
    ):
        retailer_id = f"trace_{uuid.uuid4().hex[:8]}"
        created = await api.post(
            "/v1/retailers",
            json={"id": retailer_id, "name": "Trace"},
            headers={"X-Admin-Token": ADMIN_TOKEN},
        )
        headers = {"X-API-Key": created.json()["api_key"]}
        response = await api.post(
            "/v1/carts/t1/events",
            json={
                "event_id": "e1",
                "type": "item_added",
                "items": items(30),
                "customer": SHOPPER,
            },
            headers=headers,
        )
        assert response.json()["workflow_actions"] == ["queued"], response.text
        await app.state.cart_relay.drain()  # the start, made by the relay, in the same trace
        nudge = await api.post(
            "/v1/carts/t1/events", json={"event_id": "e2", "type": "exit_intent"}, headers=headers
        )
        assert nudge.json()["workflow_actions"] == ["nudge_trigger"], nudge.text

        def names() -> set[str]:
            return {s.name for s in spans.get_finished_spans()}

        await eventually(
            lambda: _async(any(n.startswith("RunActivity:") for n in names())),
            what="an activity span",
        )
        await started.terminate_running(client)

    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "POST /v1/carts/{cart_id}/events")
    trace_id = request.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    assert "StartWorkflow:CartRecoveryV4" in in_trace
    assert "RunWorkflow:CartRecoveryV4" in in_trace
    assert any(n.startswith("RunActivity:") for n in in_trace), in_trace
    assert request.attributes["http.route"] == "/v1/carts/{cart_id}/events"
    assert request.attributes["http.response.status_code"] == 202

    # The ingestion counter saw both events.
    stored = REGISTRY.get_sample_value(
        "winback_cart_events_total", {"source": "api", "outcome": "stored"}
    )
    assert stored is not None and stored >= 2


async def _async(value: bool) -> bool:
    return value
