"""Agent operations: claim + complete through the API against bare Temporal Updates.

    python -m bench.agent_operations [--tasks 200] [--agents 8] [--db sqlite|postgres]
                                     [--json PATH] [--profile DIR]

Every part in its own process, as in production: one Temporal dev server, ``winback worker``,
the API under ``uvicorn`` (one process), and this process as the agents' browsers. N carts
whose shoppers ask for a callback from the on-site nudge each open a callback task; A agents,
each with its own token, then take tasks one at a time: ``POST /v1/tasks/{id}/claim`` then
``POST /v1/tasks/{id}/complete`` (outcome ``voicemail``) over HTTP. The baseline is N
``bench.bare_workflow.BareTaskWorkflow`` (one task, claim and complete Updates with validators,
nothing else) on the same server, run by a bare worker in its own process
(``bench.worker_process bare-tasks``), and A agents sending the same two Updates with the
Temporal client from this process. Prints tasks/s, each operation's p50/p95 and the ratios.

(Until issue 11's last round the API and both workers ran inside this process, on one event
loop: the agents' requests then queued behind the cart workflows' activities, which a
deployment never does.)
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from temporalio.client import Client

from bench.bare_workflow import BareClaim, BareCompletion, BareTaskWorkflow
from bench.ingestion import (
    ADMIN_TOKEN,
    BIN,
    PIDS,
    ROOT,
    database,
    free_port,
    process,
    uvicorn_args,
    wait_http,
    wait_port,
)
from bench.procs import cpu_seconds, percentile, ratio, worker_process
from winback.platform.temporal import DATA_CONVERTER, search_attribute_flags
from workflows.tasks.human_tasks import HumanTaskWorkflow
from workflows.tasks.types import TaskClaim, TaskCompletion

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


@contextlib.contextmanager
def profiled(directory: Path | None, name: str, pid: int) -> Iterator[None]:
    """``py-spy record`` of one process for the length of the block (``--profile``)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(BIN / "py-spy"),
            *("record", "--gil", "--nonblocking", "--rate", "200", "-p", str(pid)),
            *("-f", "speedscope", "-o", str(directory / f"{name}.speedscope.json")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
        spy.wait(timeout=60)


class CpuMeter:
    """CPU seconds of our processes (API, worker, dev server) over one phase, per task, and of
    this one (the agents: HTTP or the Temporal client), which shares the same two cores."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids | {"agents": os.getpid()}
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def per_task_ms(self, tasks: int) -> dict[str, float]:
        end = self._read()
        return {
            f"{name}_cpu_ms_per_task": (end[name] - self.start[name]) * 1000 / tasks
            for name in self.pids
        }


class Api:
    """The API over HTTP, as a retailer's backend and the agents' browsers reach it."""

    def __init__(self, http: httpx.AsyncClient, retailer: str, api_key: str) -> None:
        self.http, self.retailer, self.headers = http, retailer, {"X-API-Key": api_key}

    async def event(self, cart: str, type: str, **fields: Any) -> None:
        body = {"event_id": uuid.uuid4().hex, "type": type, **fields}
        response = await self.http.post(f"/v1/carts/{cart}/events", json=body, headers=self.headers)
        if response.status_code != 202:
            raise RuntimeError(f"{type} for {cart}: {response.status_code} {response.text}")


async def make_retailer(http: httpx.AsyncClient) -> Api:
    retailer = f"agents{uuid.uuid4().hex[:6]}"
    created = await http.post(
        "/v1/retailers",
        json={"id": retailer, "name": "Agent bench"},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    created.raise_for_status()
    api = Api(http, retailer, created.json()["api_key"])
    (await http.put("/v1/cadence", json=CADENCE, headers=api.headers)).raise_for_status()
    return api


async def open_tasks(
    api: Api,
    supervisor: dict[str, str],
    count: int,
    prefix: str = "cb",
    opening: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """``count`` carts whose shopper asks for a callback; their open tasks (as the API lists
    them). ``opening`` receives the CPU per task from the callback requests until every task
    is listed (the callback signal and the task's opening)."""
    carts = [f"{prefix}-{n}" for n in range(count)]

    async def start(n: int, cart: str) -> None:
        await api.event(
            cart,
            "item_added",
            items=[{"sku": "S", "name": "Shoe", "price": 90.0, "quantity": 1}],
            customer={"email": f"{cart}@example.com", "phone": f"+1415{3_000_000 + n}"},
            consent={"email": True, "sms": True, "voice": True},
        )
        await api.event(cart, "idle")

    await _gather(10, [lambda n=n, c=c: start(n, c) for n, c in enumerate(carts)])
    await asyncio.sleep(2)  # the nudges are offered
    meter = CpuMeter({"worker": PIDS["worker"], "temporal": PIDS["temporal"]})
    await _gather(10, [lambda c=c: api.event(c, "nudge_reply", reply="callback") for c in carts])
    deadline = time.perf_counter() + 300
    while True:
        response = await api.http.get(
            "/v1/tasks", params={"status": "open", "limit": 500}, headers=supervisor
        )
        response.raise_for_status()
        tasks = [t for t in response.json() if t["cart_id"] in carts]
        if len(tasks) >= count:
            if opening is not None:
                opening.update(meter.per_task_ms(count))
            return tasks
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(tasks)} of {count} tasks opened")
        await asyncio.sleep(0.5)


async def make_agents(api: Api, count: int) -> list[dict[str, str]]:
    agents = []
    for n in range(count):
        response = await api.http.post(
            "/v1/agents",
            json={
                "id": f"agent-{n}",
                "name": f"Agent {n}",
                "email": f"agent-{n}@acme.example",
                "is_supervisor": True,
            },
            headers=api.headers,
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


async def run_ours(base: str, agents: list[dict[str, str]], task_ids: list[str]) -> dict[str, Any]:
    """The agents' requests, with aiohttp: the load generator shares the two cores with what it
    measures, and httpx spent about three times its CPU (3.6-4.0 against 1.2-1.4 ms a task)."""
    todo = list(task_ids)
    claims: list[float] = []
    completes: list[float] = []
    body = {"outcome": "voicemail", "notes": "Left a message."}

    async def agent(http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        while todo:
            task_id = todo.pop()
            t0 = time.perf_counter()
            async with http.post(f"/v1/tasks/{task_id}/claim", headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"claim {task_id}: {r.status} {await r.text()}")
                await r.read()
            t1 = time.perf_counter()
            async with http.post(f"/v1/tasks/{task_id}/complete", json=body, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"complete {task_id}: {r.status} {await r.text()}")
                await r.read()
            t2 = time.perf_counter()
            claims.append((t1 - t0) * 1000)
            completes.append((t2 - t1) * 1000)

    connector = aiohttp.TCPConnector(limit=len(agents))
    async with aiohttp.ClientSession(base, connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(agent(http, h) for h in agents))
        seconds = time.perf_counter() - t0
    return _summary("ours (API)", len(task_ids), seconds, claims, completes)


async def run_direct(address: str, tasks: list[dict[str, Any]], agents: int) -> dict[str, Any]:
    """Our workflows' own share: the same claim and complete Updates sent to our cart workflows
    with the client, as the API sends them, without the API (no auth, no reads, no row write)."""
    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    todo = list(tasks)
    claims: list[float] = []
    completes: list[float] = []

    async def agent(n: int) -> None:
        who = f"agent-{n}"
        while todo:
            task = todo.pop()
            handle = client.get_workflow_handle(task["workflow_id"])
            t0 = time.perf_counter()
            await handle.execute_update(
                HumanTaskWorkflow.claim_task, TaskClaim(task_id=task["id"], agent_id=who)
            )
            t1 = time.perf_counter()
            await handle.execute_update(
                HumanTaskWorkflow.complete_task,
                TaskCompletion(task_id=task["id"], agent_id=who, outcome="voicemail", notes=""),
            )
            t2 = time.perf_counter()
            claims.append((t1 - t0) * 1000)
            completes.append((t2 - t1) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(agent(n) for n in range(agents)))
    return _summary("ours, Updates only", len(tasks), time.perf_counter() - t0, claims, completes)


async def run_bare(
    address: str, count: int, agents: int, profile: Path | None = None
) -> dict[str, Any]:
    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    async with worker_process("bare-tasks", address) as worker:
        queue = worker.task_queue
        handles = [
            await client.start_workflow(BareTaskWorkflow.run, id=f"{queue}-{n}", task_queue=queue)
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

        with profiled(profile, "bare-worker", worker.pid):
            # The same window for every process: the Updates, not the starts before them.
            meter = CpuMeter({"worker": worker.pid, "temporal": PIDS["temporal"]})
            t0 = time.perf_counter()
            await asyncio.gather(*(agent(n) for n in range(agents)))
            seconds = time.perf_counter() - t0
            cpu = meter.per_task_ms(count)
    return _summary("bare Updates", count, seconds, claims, completes) | cpu


async def run_against(args: argparse.Namespace, base: str, address: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        api = await make_retailer(http)
        agents = await make_agents(api, args.agents)
        print(f"opening {args.tasks} callback tasks", file=sys.stderr)
        opening: dict[str, float] = {}
        tasks = await open_tasks(api, agents[0], args.tasks, opening=opening)
        direct_tasks = await open_tasks(api, agents[0], args.tasks, prefix="direct")
        await asyncio.sleep(1)
        print("ours", file=sys.stderr)
        pids = {"api": PIDS["api"], "worker": PIDS["worker"], "temporal": PIDS["temporal"]}
        with (
            profiled(args.profile, "ours-api", PIDS["api"]),
            profiled(args.profile, "ours-worker", PIDS["worker"]),
        ):
            meter = CpuMeter(pids)
            ours = await run_ours(base, agents, [t["id"] for t in tasks])
            ours |= meter.per_task_ms(len(tasks))
        await asyncio.sleep(3)  # the completions' activities finish
        print("ours, Updates only", file=sys.stderr)
        with profiled(args.profile, "direct-worker", PIDS["worker"]):
            meter = CpuMeter(pids)
            direct = await run_direct(address, direct_tasks, args.agents)
            direct |= meter.per_task_ms(len(direct_tasks))
        await asyncio.sleep(3)
        done = await http.get(
            "/v1/tasks", params={"status": "done", "limit": 500}, headers=agents[0]
        )
        done.raise_for_status()
    print("bare", file=sys.stderr)
    bare = await run_bare(address, args.tasks, args.agents, args.profile)
    return {
        "config": vars(args) | {"profile": str(args.profile) if args.profile else None},
        "ours": ours,
        "direct": direct,
        "bare": bare,
        "rows_done": len(done.json()),
        "opening": opening,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The dev server, ``winback worker`` and one uvicorn API process, then both phases."""
    with tempfile.TemporaryDirectory(prefix="winback-agent-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with database(args.db, tmp) as url, contextlib.ExitStack() as stack:
            temporal_port, api_port = free_port(), free_port()
            address = f"127.0.0.1:{temporal_port}"
            env = {
                **os.environ,
                "WINBACK_DATABASE_URL": url,
                "WINBACK_ADMIN_TOKEN": ADMIN_TOKEN,
                "WINBACK_DATA_DIR": str(tmp / "data"),
                "WINBACK_RATE_LIMIT_PER_KEY": "100000000/hour",
                "WINBACK_RATE_LIMIT_PER_ADDRESS": "100000000/hour",
                "WINBACK_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:6]}",
                "WINBACK_TEMPORAL_ADDRESS": address,
                "WINBACK_WORKER_METRICS_PORT": str(free_port()),
                "PYTHONPATH": str(ROOT),
            }
            subprocess.run([str(BIN / "winback"), "migrate"], env=env, check=True)
            temporal = [
                str(BIN / "temporal"),
                *("server", "start-dev", "--headless", "--port", str(temporal_port)),
                *("--log-level", "error", *search_attribute_flags()),
            ]
            stack.enter_context(process(temporal, env, "temporal", tmp))
            wait_port(temporal_port)
            worker = [str(BIN / "winback"), "worker"]
            stack.enter_context(process(worker, env, "worker", tmp))
            api = uvicorn_args("winback", api_port, 1)
            stack.enter_context(process(api, env, "winback-api", tmp))
            base = f"http://127.0.0.1:{api_port}"
            wait_http(f"{base}/healthz")
            return asyncio.run(run_against(args, base, address))


def report(result: dict[str, Any]) -> str:
    ours, direct, bare = result["ours"], result["direct"], result["bare"]
    cfg = result["config"]
    lines = [
        f"{cfg['tasks']} tasks, {cfg['agents']} agents, {cfg['db']}; claim + complete per task "
        f"(inbox rows done: {result['rows_done']})",
        f"{'':<26}{'ours (API)':>12}{'ours Updates':>14}{'bare Updates':>14}"
        f"{'ours/bare':>11}{'Updates/bare':>14}",
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
            f"  {key:<24}{ours[key]:>12.1f}{direct[key]:>14.1f}{bare[key]:>14.1f}"
            f"{ratio(ours[key], bare[key]):>11.2f}{ratio(direct[key], bare[key]):>14.2f}"
        )
    for key in (
        "api_cpu_ms_per_task",
        "worker_cpu_ms_per_task",
        "temporal_cpu_ms_per_task",
        "agents_cpu_ms_per_task",
    ):
        cells = [f"{side.get(key, float('nan')):>{w}.1f}" for side, w in ((ours, 12), (direct, 14))]
        bare_cell = f"{bare[key]:>14.1f}" if key in bare else f"{'-':>14}"
        lines.append(f"  {key:<24}{''.join(cells)}{bare_cell}")
    opening = result["opening"]
    lines.append(
        f"  opening a task (callback signal to listed): worker "
        f"{opening['worker_cpu_ms_per_task']:.1f}, dev server "
        f"{opening['temporal_cpu_ms_per_task']:.1f} ms CPU per task"
    )
    lines.append(
        "ours (API): through the API over HTTP; ours Updates: the same Updates to our workflows "
        "sent with the client (no API); bare: a minimal workflow with the same two Updates."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--profile", type=Path, help="py-spy profiles of the API and the workers into this dir"
    )
    args = parser.parse_args()
    result = run(args)
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
