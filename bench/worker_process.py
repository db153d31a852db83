"""One worker in its own process, so a benchmark can read its CPU and memory from ``/proc``.

    python -m bench.worker_process {ours,ours-before,bare,bare-tasks} ADDRESS TASK_QUEUE

``ours`` is the production worker (``winback.composition.stack.running_worker``) with the
outbox for providers and a temp SQLite database; ``ours-before`` the same worker with the SDK's
default sandbox, pydantic's stock converter and the SDK's default cache and slots, as it was
before issue 11; ``bare`` only ``bench.bare_workflow``'s cart skeleton, ``bare-tasks`` only its
``BareTaskWorkflow`` (the baseline of ``bench.agent_operations``). The ``WINBACK_WORKER_*``
settings apply to ``ours`` and the bare kinds. It prints ``ready`` on stdout once polling and
runs until stdin closes. Warnings (the SDK's and the Temporal core's) go to stderr, where the
benchmark counts them.
"""

import asyncio
import logging
import sys
import tempfile
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.bare_workflow import BareTaskWorkflow, BareWorkflow, bare_noop
from winback.composition.stack import prepare_database, running_worker
from winback.composition.worker import WORKFLOWS, activity_implementations
from winback.composition.worker_tuning import worker_options
from winback.messaging.channels import ChannelAdapter
from winback.messaging.channels.outbox import OutboxAdapter
from winback.platform.db import make_session_factory
from winback.platform.settings import Settings
from winback.platform.temporal import DATA_CONVERTER


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main(kind: str, address: str, task_queue: str) -> None:
    with tempfile.TemporaryDirectory(prefix="winback-bench-worker-") as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/winback.db",
            task_queue=task_queue,
            worker_metrics_port=None,
            redrive_every_seconds=None,
        )
        options = worker_options(settings)
        converter = pydantic_data_converter if kind == "ours-before" else DATA_CONVERTER
        client = await Client.connect(address, data_converter=converter)
        outbox = OutboxAdapter()
        adapters: dict[str, ChannelAdapter] = {"email": outbox, "sms": outbox, "voice": outbox}
        if kind == "ours":
            engine = await prepare_database(settings)
            async with running_worker(client, settings, make_session_factory(engine), adapters):
                print("ready", flush=True)
                await _until_stdin_closes()
            await engine.dispose()
            return
        worker: Worker
        if kind == "ours-before":
            engine = await prepare_database(settings)
            sessions = make_session_factory(engine)
            # As before issue 11: the SDK's defaults (1,000 cached, 100 task slots), no tuning.
            extra: dict[str, Any] = {"workflow_runner": SandboxedWorkflowRunner()}
            worker = Worker(
                client,
                task_queue=task_queue,
                workflows=WORKFLOWS,
                activities=activity_implementations(
                    settings=settings, sessions=sessions, adapters=adapters
                ),
                **extra,
            )
        else:
            extra = {**options, "workflow_runner": SandboxedWorkflowRunner()}
            worker = Worker(
                client,
                task_queue=task_queue,
                workflows=[BareTaskWorkflow] if kind == "bare-tasks" else [BareWorkflow],
                activities=[bare_noop],
                **extra,
            )
        async with worker:
            print("ready", flush=True)
            await _until_stdin_closes()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
