"""Agent operations: claim + complete through the API against bare Temporal Updates.

    python -m bench.agent_operations [--tasks 200] [--agents 8] [--json PATH]

One run, one dev server, one process (the API in-process, as in ``bench.cart_throughput``, with
our worker and a bare worker): N carts whose shoppers ask for a callback from the on-site nudge
each open a callback task; A agents, each with its own token, then take tasks one at a time:
``POST /v1/tasks/{id}/claim`` then ``POST /v1/tasks/{id}/complete`` (outcome ``voicemail``).
The baseline is N ``bench.bare_workflow.BareTaskWorkflow`` (one task, claim and complete Updates
with validators, nothing else) on the same server, and A agents sending the same two Updates
with the client directly. Prints tasks/s, each operation's p50/p95 and the ratios.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import col, func, select
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from bench.bare_workflow import BareClaim, BareCompletion, BareTaskWorkflow
from bench.cart_throughput import BenchConfig, Retailer, Stack, make_retailer, open_stack
from bench.procs import percentile, ratio
from winback.tasks.models import HumanTask

CADENCE = {
    "abandon_after": "1h",
    "expire_after": "1d",
    "quiet_hours": {"start": "00:00", "end": "00:00"},
    "frequency_cap": None,
    "steps": [{"channel": "onsite"}, {"channel": "email", "delay": "1h"}],
}


async def _gather(limit: int, jobs: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


async def open_tasks(stack: Stack, retailer: Retailer, count: int) -> list[str]:
    """``count`` carts whose shopper asks for a callback; the ids of their open tasks."""
    carts = [f"cb-{n}" for n in range(count)]

    async def start(n: int, cart: str) -> None:
        await retailer.event(
            cart,
            "item_added",
            items=[{"sku": "S", "name": "Shoe", "price": 90.0, "quantity": 1}],
            customer={"email": f"agent-bench-{n}@example.com", "phone": f"+1415{3_000_000 + n}"},
            consent={"email": True, "sms": True, "voice": True},
        )
        await retailer.event(cart, "idle")

    await _gather(10, [lambda n=n, c=c: start(n, c) for n, c in enumerate(carts)])
    await asyncio.sleep(2)  # the nudges are offered
    await _gather(
        10, [lambda c=c: retailer.event(c, "nudge_reply", reply="callback") for c in carts]
    )
    deadline = time.perf_counter() + 300
    while True:
        async with stack.sessions() as session:
            rows = (
                await session.exec(
                    select(HumanTask.id).where(
                        HumanTask.retailer_id == retailer.id, col(HumanTask.status) == "open"
                    )
                )
            ).all()
        if len(rows) >= count:
            return list(rows)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(rows)} of {count} tasks opened")
        await asyncio.sleep(0.5)


async def make_agents(stack: Stack, retailer: Retailer, count: int) -> list[dict[str, str]]:
    agents = []
    for n in range(count):
        response = await stack.api.post(
            "/v1/agents",
            json={
                "id": f"agent-{n}",
                "name": f"Agent {n}",
                "email": f"agent-{n}@acme.example",
                "is_supervisor": True,
            },
            headers=retailer.headers,
        )
        response.raise_for_status()
        agents.append({"X-Agent-Token": response.json()["token"]})
    return agents


def _summary(
    name: str, tasks: int, seconds: float, claims: list[float], completes: list[float]
) -> dict[str, Any]:
    return {
        "side": name,
        "tasks": tasks,
        "seconds": seconds,
        "tasks_per_second": tasks / seconds,
        "claim_p50_ms": statistics.median(claims),
        "claim_p95_ms": percentile(claims, 0.95),
        "complete_p50_ms": statistics.median(completes),
        "complete_p95_ms": percentile(completes, 0.95),
        "op_p95_ms": percentile(claims + completes, 0.95),
    }


class _UpdateTimer:
    """Times every ``WorkflowHandle.execute_update`` the API makes, to split a request's time
    into the Update round trip and the rest (authentication, reads, the row's write)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._original = WorkflowHandle.execute_update

    def __enter__(self) -> "_UpdateTimer":
        original, samples = self._original, self.samples

        async def timed(handle: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(handle, *args, **kwargs)
            finally:
                samples.append((time.perf_counter() - t0) * 1000)

        WorkflowHandle.execute_update = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        WorkflowHandle.execute_update = self._original  # type: ignore[method-assign]


async def run_ours(
    stack: Stack, retailer: Retailer, agents: list[dict[str, str]], task_ids: list[str]
) -> dict[str, Any]:
    todo = list(task_ids)
    claims: list[float] = []
    completes: list[float] = []

    async def agent(headers: dict[str, str]) -> None:
        while todo:
            task_id = todo.pop()
            t0 = time.perf_counter()
            r = await stack.api.post(f"/v1/tasks/{task_id}/claim", headers=headers)
            t1 = time.perf_counter()
            if r.status_code != 200:
                raise RuntimeError(f"claim {task_id}: {r.status_code} {r.text}")
            r = await stack.api.post(
                f"/v1/tasks/{task_id}/complete",
                json={"outcome": "voicemail", "notes": "Left a message."},
                headers=headers,
            )
            t2 = time.perf_counter()
            if r.status_code != 200:
                raise RuntimeError(f"complete {task_id}: {r.status_code} {r.text}")
            claims.append((t1 - t0) * 1000)
            completes.append((t2 - t1) * 1000)

    t0 = time.perf_counter()
    with _UpdateTimer() as updates:
        await asyncio.gather(*(agent(h) for h in agents))
    summary = _summary("ours (API)", len(task_ids), time.perf_counter() - t0, claims, completes)
    summary["update_rpc_p50_ms"] = statistics.median(updates.samples)
    summary["update_rpc_p95_ms"] = percentile(updates.samples, 0.95)
    summary["api_rest_p50_ms"] = (
        statistics.median(claims + completes) - summary["update_rpc_p50_ms"]
    )
    return summary


async def run_bare(stack: Stack, count: int, agents: int) -> dict[str, Any]:
    queue = f"bare-tasks-{uuid.uuid4().hex[:6]}"
    async with Worker(stack.client, task_queue=queue, workflows=[BareTaskWorkflow]):
        handles = [
            await stack.client.start_workflow(
                BareTaskWorkflow.run, id=f"{queue}-{n}", task_queue=queue
            )
            for n in range(count)
        ]
        await asyncio.sleep(1)
        todo = list(handles)
        claims: list[float] = []
        completes: list[float] = []

        async def agent(n: int) -> None:
            who = f"agent-{n}"
            while todo:
                handle = todo.pop()
                t0 = time.perf_counter()
                await handle.execute_update(BareTaskWorkflow.claim, BareClaim(who))
                t1 = time.perf_counter()
                await handle.execute_update(
                    BareTaskWorkflow.complete, BareCompletion(who, "voicemail")
                )
                t2 = time.perf_counter()
                claims.append((t1 - t0) * 1000)
                completes.append((t2 - t1) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(agent(n) for n in range(agents)))
        seconds = time.perf_counter() - t0
    return _summary("bare Updates", count, seconds, claims, completes)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with open_stack(BenchConfig(database_url=args.database_url)) as stack:
        retailer = await make_retailer(stack, f"agents_{stack.run_id}", CADENCE)
        agents = await make_agents(stack, retailer, args.agents)
        print(f"opening {args.tasks} callback tasks", file=sys.stderr)
        task_ids = await open_tasks(stack, retailer, args.tasks)
        await asyncio.sleep(1)
        print("ours", file=sys.stderr)
        ours = await run_ours(stack, retailer, agents, task_ids)
        print("bare", file=sys.stderr)
        bare = await run_bare(stack, args.tasks, args.agents)
        async with stack.sessions() as session:
            done = (
                await session.exec(
                    select(func.count())
                    .select_from(HumanTask)
                    .where(HumanTask.retailer_id == retailer.id, col(HumanTask.status) == "done")
                )
            ).one()
    return {"config": vars(args), "ours": ours, "bare": bare, "rows_done": int(done)}


def report(result: dict[str, Any]) -> str:
    ours, bare = result["ours"], result["bare"]
    cfg = result["config"]
    lines = [
        f"{cfg['tasks']} tasks, {cfg['agents']} agents; claim + complete per task "
        f"(inbox rows done: {result['rows_done']})",
        f"{'':<22}{'ours (API)':>14}{'bare Updates':>14}{'ours/bare':>12}",
    ]
    for key in (
        "tasks_per_second",
        "claim_p50_ms",
        "claim_p95_ms",
        "complete_p50_ms",
        "complete_p95_ms",
        "op_p95_ms",
    ):
        lines.append(
            f"  {key:<20}{ours[key]:>14.1f}{bare[key]:>14.1f}{ratio(ours[key], bare[key]):>12.2f}"
        )
    lines.append(
        f"  ours: Update round trip p50 {ours['update_rpc_p50_ms']:.1f} ms, "
        f"p95 {ours['update_rpc_p95_ms']:.1f} ms; the rest of a request p50 "
        f"{ours['api_rest_p50_ms']:.1f} ms"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
