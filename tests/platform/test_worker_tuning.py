"""The worker's sandbox and bounds (``winback.composition.worker_tuning``), and the shared
TypeAdapter cache of the payload converter: what keeps a cart's workflow task cheap."""

import ast
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.worker.workflow_sandbox import SandboxRestrictions

from winback.composition.worker_tuning import PASSTHROUGH_MODULES, worker_options
from winback.platform.settings import Settings
from winback.platform.temporal import _SHARED_TYPE_ADAPTERS, DATA_CONVERTER, PayloadConverter
from workflows.carts.types import CartSnapshot

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_passed_through_modules_import_only_stdlib_temporalio_and_themselves() -> None:
    """Passing through is safe only for modules with no dependency that could be impure."""
    assert PASSTHROUGH_MODULES == ("workflows",)
    allowed = set(sys.stdlib_module_names) | {"temporalio", "workflows"}
    for path in WORKFLOWS.rglob("*.py"):
        assert _imported_roots(path) <= allowed, path


def test_worker_options_follow_the_settings() -> None:
    settings = Settings(
        worker_max_cached_workflows=50,
        worker_max_concurrent_workflow_tasks=4,
        worker_max_concurrent_activities=7,
        worker_max_concurrent_local_activities=3,
    )
    options = worker_options(settings)

    assert options["max_cached_workflows"] == 50
    assert options["max_concurrent_workflow_tasks"] == 4
    assert options["max_concurrent_activities"] == 7
    assert options["max_concurrent_local_activities"] == 3
    passthrough = options["workflow_runner"].restrictions.passthrough_modules
    assert "workflows" in passthrough


def test_strict_sandbox_passes_nothing_of_ours_through() -> None:
    options = worker_options(Settings(worker_strict_sandbox=True))

    restrictions = options["workflow_runner"].restrictions
    assert restrictions == SandboxRestrictions.default
    assert "workflows" not in restrictions.passthrough_modules


def test_every_converter_instance_shares_one_type_adapter_per_type() -> None:
    """The SDK makes a payload converter per workflow instance; the adapters must outlive it."""
    snapshot = CartSnapshot(
        status="active",
        last_activity_at=datetime(2026, 1, 1, tzinfo=UTC),
        has_contact=True,
        value=9.5,
    )
    payload = DATA_CONVERTER.payload_converter.to_payloads([snapshot])[0]
    PayloadConverter().from_payload(payload, CartSnapshot)
    hits = _SHARED_TYPE_ADAPTERS.cache_info().hits

    decoded = PayloadConverter().from_payload(payload, CartSnapshot)

    assert decoded == snapshot
    assert _SHARED_TYPE_ADAPTERS.cache_info().hits == hits + 1
