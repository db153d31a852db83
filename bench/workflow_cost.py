"""Workflow-task cost: our cart workflow against a bare workflow, same dev server, same run.

    python -m bench.workflow_cost [--starts 400] [--concurrency 32] [--paced-seconds 20]
                                  [--no-before] [--json PATH]

Three workers, each in its own process so its CPU can be read from ``/proc``: ``bare``
(``bench.bare_workflow``, default sandbox), ``ours`` (the production worker) and ``ours-before``
(the same workflows with the SDK's default sandbox and pydantic's stock converter: how it was
before issue 11). For each: a burst of N starts (C in flight), every one of which runs exactly
one workflow task (a cart's first: set up, show the next step, start the abandonment timer);
then starts paced at 0.8x the rate the bare side sustained in its burst, for a while, counting
the workers' "task duration exceeded", "task not found" and "deadlock" warnings.

Figures (bench/README.md has the table of a run):
- worker CPU ms/task: the worker process's CPU over the burst / N.
- server CPU ms/start: the dev server's CPU over the burst / N.
- starts/s sustained: N / (first start sent .. last first-task completed, from the histories).
- first task p50/p95 ms: started event to first workflow-task-completed event, in the histories
  of a sample of the carts (every 10th and the last 20).
"""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.bare_workflow import BareInput
from bench.procs import (
    HOUR,
    WorkerProcess,
    cpu_seconds,
    dev_server,
    dev_server_pid,
    now,
    percentile,
    ratio,
    settle,
    worker_process,
)
from workflows import search_attributes as sa
from workflows.carts.types import CadenceSpec, CartRecoveryInput, GuardSpec, StepSpec

STEP_DELAYS = [5, 10, 15]


def cart_input(cart_id: str) -> CartRecoveryInput:
    """What the API would start for a cart with a contact: the default-shaped cadence, with the
    abandonment an hour away so each start runs exactly one workflow task."""
    steps = [StepSpec(index=0, channel="onsite")] + [
        StepSpec(index=i, channel=ch, delay_seconds=d, template=t)
        for i, (ch, d, t) in enumerate(
            [("email", 5, "cart_reminder"), ("sms", 10, "cart_sms"), ("email", 15, "cart_last")],
            start=1,
        )
    ]
    return CartRecoveryInput(
        retailer_id="bench",
        cart_id=cart_id,
        cadence=CadenceSpec(
            version=1,
            abandon_after_seconds=3600,
            expire_after_seconds=7200,
            steps=steps,
            guards=GuardSpec(quiet_start="00:00", quiet_end="00:00"),
        ),
        last_activity_at=now(),
        has_contact=True,
        cart_value=42.0,
    )


async def start_one(client: Client, worker: WorkerProcess, n: int) -> WorkflowHandle[Any, Any]:
    wid = f"{worker.task_queue}-{n}"
    if worker.kind == "bare":
        return await client.start_workflow(
            "BareWorkflow",
            BareInput(abandon_at=now() + HOUR, step_delays=list(map(float, STEP_DELAYS))),
            id=wid,
            task_queue=worker.task_queue,
        )
    return await client.start_workflow(
        "CartRecovery",
        cart_input(wid),
        id=wid,
        task_queue=worker.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.RETAILER, "bench"),
                SearchAttributePair(sa.STAGE, "active"),
                SearchAttributePair(sa.CART_VALUE, 42.0),
            ]
        ),
    )


async def start_many(
    client: Client, worker: WorkerProcess, count: int, concurrency: int, rate: float | None
) -> list[WorkflowHandle[Any, Any]]:
    """``count`` starts, at most ``concurrency`` in flight, paced at ``rate``/s if given."""
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    base = worker.__dict__.setdefault("_started", 0)
    worker.__dict__["_started"] = base + count

    async def one(i: int) -> WorkflowHandle[Any, Any]:
        if rate:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        async with gate:
            return await start_one(client, worker, base + i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def first_task_times(handle: WorkflowHandle[Any, Any]) -> tuple[datetime, datetime]:
    """(started, first workflow task completed) from the workflow's history."""
    history = await handle.fetch_history()
    started = history.events[0].event_time.ToDatetime()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return started, event.event_time.ToDatetime()
    raise RuntimeError(f"{handle.id} has not completed a workflow task")


def sample(handles: list[WorkflowHandle[Any, Any]]) -> list[WorkflowHandle[Any, Any]]:
    chosen = {h.id: h for h in handles[::10] + handles[-20:]}
    return list(chosen.values())


@dataclass
class Phase:
    kind: str
    starts: int
    seconds: float
    starts_per_second: float
    worker_cpu_ms_per_task: float
    server_cpu_ms_per_start: float
    first_task_p50_ms: float
    first_task_p95_ms: float
    first_task_max_ms: float
    warnings: dict[str, int]


async def run_phase(
    client: Client,
    worker: WorkerProcess,
    server_pid: int,
    count: int,
    concurrency: int,
    rate: float | None = None,
) -> Phase:
    worker.new_warnings()
    cpu0, server0, t0 = worker.cpu(), cpu_seconds(server_pid), now()
    handles = await start_many(client, worker, count, concurrency, rate)
    await settle(worker)
    cpu1, server1 = worker.cpu(), cpu_seconds(server_pid)
    times = [await first_task_times(h) for h in sample(handles)]
    latencies = [(done - started).total_seconds() * 1000 for started, done in times]
    last_done = max(done for _, done in times)
    seconds = (last_done - t0.replace(tzinfo=None)).total_seconds()
    phase = Phase(
        kind=worker.kind,
        starts=count,
        seconds=seconds,
        starts_per_second=count / seconds,
        worker_cpu_ms_per_task=(cpu1 - cpu0) * 1000 / count,
        server_cpu_ms_per_start=(server1 - server0) * 1000 / count,
        first_task_p50_ms=percentile(latencies, 0.5),
        first_task_p95_ms=percentile(latencies, 0.95),
        first_task_max_ms=max(latencies),
        warnings=worker.new_warnings(),
    )
    print(f"  {worker.kind:<12} {'paced' if rate else 'burst'}: {asdict(phase)}", file=sys.stderr)
    return phase


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["bare", "ours"] + ([] if args.no_before else ["ours-before"])
    async with dev_server() as env:
        address = env.client.service_client.config.target_host
        workers: dict[str, WorkerProcess] = {}
        contexts = []
        try:
            for kind in kinds:
                ctx = worker_process(kind, address)
                contexts.append(ctx)
                workers[kind] = await ctx.__aenter__()
            server_pid = dev_server_pid({w.pid for w in workers.values()})
            client = env.client
            print("warm-up", file=sys.stderr)
            for worker in workers.values():
                await run_phase(client, worker, server_pid, 20, 4)
            print("bursts", file=sys.stderr)
            bursts = {
                k: await run_phase(client, w, server_pid, args.starts, args.concurrency)
                for k, w in workers.items()
            }
            rate = 0.8 * bursts["bare"].starts_per_second
            print(f"paced at {rate:.1f}/s", file=sys.stderr)
            count = max(1, round(rate * args.paced_seconds))
            paced = {
                k: await run_phase(client, w, server_pid, count, args.concurrency * 2, rate)
                for k, w in workers.items()
            }
        finally:
            for ctx in reversed(contexts):
                await ctx.__aexit__(None, None, None)
    return {
        "config": vars(args),
        "bursts": {k: asdict(v) for k, v in bursts.items()},
        "paced_rate": rate,
        "paced": {k: asdict(v) for k, v in paced.items()},
    }


def report(result: dict[str, Any]) -> str:
    bursts, paced = result["bursts"], result["paced"]
    kinds = list(bursts)
    head = f"{'':<34}" + "".join(f"{k:>12}" for k in kinds)
    head += "".join(f"{k + '/bare':>18}" for k in kinds if k != "bare")
    lines = [
        f"(a) burst: {result['config']['starts']} starts, "
        f"{result['config']['concurrency']} in flight, one workflow task each",
        head,
    ]

    def row(label: str, table: dict[str, Any], key: str, warn: str | None = None) -> None:
        values = [table[k]["warnings"][warn] if warn else table[k][key] for k in kinds]
        text = f"  {label:<32}" + "".join(f"{v:>12.2f}" for v in values)
        text += "".join(f"{ratio(v, values[0]):>18.2f}" for v in values[1:])
        lines.append(text)

    row("worker CPU ms/task", bursts, "worker_cpu_ms_per_task")
    row("server CPU ms/start", bursts, "server_cpu_ms_per_start")
    row("starts/s sustained", bursts, "starts_per_second")
    row("first task p50 ms", bursts, "first_task_p50_ms")
    row("first task p95 ms", bursts, "first_task_p95_ms")
    lines.append(
        f"(b) paced at {result['paced_rate']:.1f} starts/s (0.8x bare's sustained rate) for "
        f"{result['config']['paced_seconds']} s"
    )
    lines.append(head)
    row("starts/s achieved", paced, "starts_per_second")
    row("worker CPU ms/task", paced, "worker_cpu_ms_per_task")
    row("first task p95 ms", paced, "first_task_p95_ms")
    row("first task max ms", paced, "first_task_max_ms")
    for warn in ("task duration exceeded", "task not found", "deadlock", "all"):
        row(f"warnings: {warn}", paced, "", warn)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paced-seconds", type=float, default=20)
    parser.add_argument("--no-before", action="store_true", help="skip the ours-before worker")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
