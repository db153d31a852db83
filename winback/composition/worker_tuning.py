"""How the worker runs workflow code: which modules the sandbox shares, and the bounds on its
memory and concurrency (``Settings.worker_*``).

The workflow sandbox gives every workflow instance fresh copies of the modules it imports, so
that one run cannot leak state into another. For our own modules that was most of a cart's
first workflow task: ``workflows/*/types.py`` and friends were executed again for every new
cart and after every cache eviction, and because each copy made new dataclasses, the payload
converter's TypeAdapters (``winback.platform.temporal``) were rebuilt for each instance too.
(Where no ``.pyc`` can be read, e.g. with ``PYTHONDONTWRITEBYTECODE`` and an editable install,
each copy was even compiled from source again.)

So the ``workflows`` package is passed through, shared by all instances: the type modules hold
only constants, dataclasses, retry policies and activity stubs; the workflow definitions keep
their state on the instance (``self``), never in module globals. What passing through gives up
is the sandbox's run-time check of those modules' *own* calls (a ``datetime.now()`` written in
``cart_recovery.py`` would no longer raise in the worker). That check still runs where it
matters for review: ``tests/replay`` replays every workflow type under the SDK's full default
sandbox (``Replayer`` without this runner), and ``lint-imports`` keeps ``workflows`` to stdlib,
``temporalio`` and itself. ``WINBACK_WORKER_STRICT_SANDBOX=true`` brings the per-instance
imports back, e.g. to chase a suspected non-determinism in production. Measured in
``bench/workflow_cost.py`` (table in bench/README.md).
"""

from typing import Any

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from winback.platform.settings import Settings

# Shared by every workflow instance (see the module docstring). ``tests/platform/
# test_worker_tuning.py`` checks that these import only stdlib, temporalio and ``workflows``.
PASSTHROUGH_MODULES = ("workflows",)


def workflow_runner(strict: bool = False) -> SandboxedWorkflowRunner:
    """The default sandbox with the ``workflows`` package passed through (``strict``: without)."""
    if strict:
        return SandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``temporalio.worker.Worker``: the sandbox and the bounds that keep
    the worker's memory flat however many carts are open (documented in docs/operations.md)."""
    return {
        "workflow_runner": workflow_runner(settings.worker_strict_sandbox),
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_local_activities": settings.worker_max_concurrent_local_activities,
    }
