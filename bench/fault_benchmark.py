"""Fault benchmark: does Winback keep its promise when processes die under it?

N carts (default 200) with a seconds-long cadence go through the real API (separate processes:
the Temporal dev server on a SQLite file, one or more workers, one or more API processes).
While the sends burst, workers are killed with SIGKILL at random moments and restarted, the
Temporal dev server is killed and restarted on its file, and the API is killed and restarted
during the ingest (the storefront resends what did not get a 2xx, with the same event id).
A share of the carts is bought in the middle of its cadence.

Then it counts, at the provider (the outbox rows, or local SendGrid/Twilio fakes that the
official SDKs talk to and that log every call):

- duplicates: a step that reached the provider more than once;
- lost: a step that was due and allowed but never delivered and not recorded with a reason;
- stuck: message rows left in a non-final state, carts whose cadence never finished;
- after purchase: a message that reached the provider after the order had been acknowledged;
- workflow statuses, and 5xx answers the storefront got.

    python -m bench.fault_benchmark                       # 200 carts, outbox, SQLite
    python -m bench.fault_benchmark --carts 50 --providers fakes
    python -m bench.fault_benchmark --database-url postgresql+psycopg://postgres@127.0.0.1/db \\
        --workers 2 --apis 2

Ports: ``--base-port`` (default 8130) and the nine above it. Everything it starts is stopped
at the end, also on Ctrl-C.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, text
from sqlmodel import col, select
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from winback.platform.db import make_engine
from winback.platform.temporal import DATA_CONVERTER, search_attribute_flags

BIN = Path(sys.executable).parent
ADMIN_TOKEN = "fault-bench-admin"
TASK_QUEUE = "fault-bench"
TWILIO_SID = "AC" + "f" * 32
POLLING = "worker polling task queue"  # what `winback worker` logs once it is up
FOLLOW_UPS = {0: "email", 1: "sms", 2: "email"}  # the cadence's step index -> channel


@dataclass
class Config:
    carts: int = 200
    providers: str = "outbox"  # or "fakes": local SendGrid and Twilio behind the official SDKs
    database_url: str | None = None  # default: SQLite in the run's temp dir
    workers: int = 1
    apis: int = 1
    worker_kills: int = 7
    concurrency: int = 10
    lead_seconds: float = 3.0  # each cart idles this long before it is abandoned
    step_gap_seconds: int = 3  # email at +gap, SMS at +2 gap, last email at +3 gap
    purchase_share: float = 0.2
    event_grace_seconds: float = 20.0  # WINBACK_SEND_EVENT_GRACE_SECONDS for the workers
    provider_latency: float = 0.02  # seconds each fake provider call takes (a kill's window)
    timeout_seconds: float = 240.0  # for the carts to settle after the faults
    base_port: int = 8130
    seed: int = 9


@dataclass
class Report:
    config: dict[str, Any]
    carts: int = 0
    ordered: int = 0
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    stuck_rows: int = 0
    stuck_carts: int = 0
    after_purchase: int = 0
    settled_with_reason: int = 0
    api_5xx: int = 0
    api_unreachable: int = 0
    faults: list[str] = field(default_factory=list)
    workflow_statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# --- fake providers ---------------------------------------------------------------------------


@dataclass
class Delivery:
    channel: str
    to: str
    message_id: str | None  # ours (SendGrid custom_args); Twilio does not carry it
    at: float


class FakeProviders:
    """SendGrid's Mail Send and Twilio's Messages/Calls (create and list), logging every call."""

    def __init__(
        self, port: int, sendgrid_key: ec.EllipticCurvePrivateKey, latency: float = 0.02
    ) -> None:
        self.deliveries: list[Delivery] = []
        self.latency = latency
        self.sendgrid_key = sendgrid_key
        self.event_urls: list[str] = []  # where SendGrid's event webhook posts (set once known)
        self.twilio: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fakes = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(fakes.latency)  # a provider takes a moment: a kill can land mid-call
                if self.path == "/v3/mail/send":
                    mail = json.loads(raw)
                    p = mail["personalizations"][0]
                    ours = (p.get("custom_args") or {}).get("winback_message_id")
                    fakes._log(Delivery("email", p["to"][0]["email"], ours, time.time()))
                    sg_id = uuid.uuid4().hex
                    # Accepted: its event comes even if the caller dies before reading the 202.
                    fakes.post_event(p["to"][0]["email"], ours, sg_id)
                    self._json(202, {}, {"X-Message-Id": sg_id})
                    return
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                kind = "sms" if self.path.endswith("/Messages.json") else "voice"
                now = datetime.now(UTC)
                resource = {
                    "sid": ("SM" if kind == "sms" else "CA") + uuid.uuid4().hex,
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "status": "queued",
                    "date_created": format_datetime(now, usegmt=True),
                    "date_sent": format_datetime(now, usegmt=True),
                }
                with fakes._lock:
                    fakes.twilio.append({**resource, "kind": kind})
                fakes._log(Delivery(kind, str(form.get("To")), None, time.time()))
                self._json(201, resource)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                kind = "sms" if url.path.endswith("/Messages.json") else "voice"
                with fakes._lock:
                    found = [
                        {k: v for k, v in r.items() if k != "kind"}
                        for r in reversed(fakes.twilio)
                        if r["kind"] == kind and r["to"] == query.get("To")
                    ]
                key = "messages" if kind == "sms" else "calls"
                self._json(200, {key: found, "next_page_uri": None, "page": 0, "page_size": 100})

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def post_event(self, email: str, ours: str | None, sg_id: str) -> None:
        """SendGrid's event webhook: a signed ``processed`` event carrying our message id (as
        its custom_args), posted a moment later, resent until an API takes it."""

        def post() -> None:
            event = {
                "event": "processed",
                "email": email,
                "timestamp": int(time.time()),
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{sg_id}.filter0001",
                "winback_message_id": ours,
            }
            body = json.dumps([event]).encode()
            for attempt in range(120):
                time.sleep(0.5)
                if not self.event_urls:
                    continue
                stamp = str(int(time.time()))
                der = self.sendgrid_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(der).decode(),
                    "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                }
                url = self.event_urls[attempt % len(self.event_urls)]
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.post(url, content=body, headers=headers, timeout=10).is_success:
                        return

        if ours is not None:
            threading.Thread(target=post, daemon=True).start()

    def _log(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def __enter__(self) -> "FakeProviders":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the processes ----------------------------------------------------------------------------


class Process:
    """One child process that can be killed (SIGKILL) and started again with the same command."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.command, self.env = name, command, env
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.held_down = False  # killed on purpose: the supervisor leaves it to the fault

    def start(self) -> None:
        if self.alive:
            return  # never two of one (an orphan would keep the port and the old state)
        self.held_down = False
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        self.held_down = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self.held_down = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def ready_count(self, marker: str) -> int:
        """How many times this process has logged ``marker`` (e.g. that it polls)."""
        try:
            return self.log.read_text(errors="replace").count(marker)
        except FileNotFoundError:
            return 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        port = config.base_port
        self.api_ports = [port + 2 * i for i in range(config.apis)]  # 8130, 8132
        self.temporal_port = port + 5
        self.fakes_port = port + 9
        database = config.database_url or f"sqlite+aiosqlite:///{workdir / 'winback.db'}"
        self.database_url = database
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WINBACK_")},
            "WINBACK_DATABASE_URL": database,
            "WINBACK_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "WINBACK_TASK_QUEUE": TASK_QUEUE,
            "WINBACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "WINBACK_DATA_DIR": str(workdir),
            "WINBACK_SECRETS_KEY": Fernet.generate_key().decode(),
            "WINBACK_SEND_EVENT_GRACE_SECONDS": str(config.event_grace_seconds),
        }
        self.sendgrid_key = ec.generate_private_key(ec.SECP256R1())
        if config.providers == "fakes":
            der = self.sendgrid_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            fake = f"http://127.0.0.1:{self.fakes_port}"
            base_env |= {
                "WINBACK_SENDGRID_API_KEY": "SG.fault-bench",
                "WINBACK_SENDGRID_BASE_URL": fake,
                "WINBACK_TWILIO_ACCOUNT_SID": TWILIO_SID,
                "WINBACK_TWILIO_AUTH_TOKEN": "fault-bench",
                "WINBACK_TWILIO_FROM_NUMBER": "+15005550006",
                "WINBACK_TWILIO_BASE_URL": fake,
                "WINBACK_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(der).decode(),
            }
        self.temporal = Process(
            "temporal",
            [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(workdir / "temporal.db"),
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.temporal_port),
                "--http-port",
                str(port + 6),
                "--metrics-port",
                str(port + 7),
                "--headless",
                "--log-level",
                "error",
                *search_attribute_flags(),
            ],
            base_env,
            workdir,
        )
        winback = str(BIN / "winback")
        self.workers = [
            Process(
                f"worker-{i}",
                [winback, "worker"],
                {**base_env, "WINBACK_WORKER_METRICS_PORT": str(port + 3 + i)},
                workdir,
            )
            for i in range(config.workers)
        ]
        self.apis = [
            Process(
                f"api-{i}",
                [winback, "api"],
                {
                    **base_env,
                    "WINBACK_API_PORT": str(api_port),
                    # Each API its own metrics port (two on one port: the second died at start).
                    "WINBACK_API_METRICS_PORT": str(port + (1, 8)[i]),
                    "WINBACK_API_HOST": "127.0.0.1",
                    "WINBACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
                },
                workdir,
            )
            for i, api_port in enumerate(self.api_ports)
        ]

    def all(self) -> list[Process]:
        return [*self.apis, *self.workers, self.temporal]

    async def start(self) -> Client:
        self.temporal.start()
        client = await _connect(f"127.0.0.1:{self.temporal_port}")
        for worker in self.workers:
            worker.start()
        deadline = time.monotonic() + 180
        while any(w.ready_count(POLLING) == 0 for w in self.workers):  # tables exist by then
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            await asyncio.sleep(0.5)
        for api in self.apis:
            api.start()
        for api_port in self.api_ports:
            await _wait_healthy(api_port)
        return client

    def stop(self) -> None:
        for process in self.all():
            process.stop()


async def _connect(address: str, patience: float = 60) -> Client:
    deadline = time.monotonic() + patience
    while True:
        try:
            return await Client.connect(address, data_converter=DATA_CONVERTER)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def _wait_healthy(port: int, patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API on :{port} did not come up")
            await asyncio.sleep(0.3)


# --- the storefront ---------------------------------------------------------------------------


class Storefront:
    """Posts events, resending (same event id) until a 2xx, as a careful storefront does."""

    def __init__(self, ports: list[int], report: Report) -> None:
        self.ports, self.report = ports, report
        self.http = httpx.AsyncClient(timeout=30)
        self.headers: dict[str, str] = {}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(200):
            port = self.ports[attempt % len(self.ports)]
            try:
                response = await self.http.request(
                    method, f"http://127.0.0.1:{port}{path}", **kwargs
                )
            except httpx.HTTPError:
                self.report.api_unreachable += 1
                await asyncio.sleep(0.25)
                continue
            if response.status_code >= 500:
                self.report.api_5xx += 1
                await asyncio.sleep(0.25)
                continue
            return response
        raise RuntimeError(f"{method} {path}: no answer after 200 tries")

    async def event(self, cart_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request(
            "POST", f"/v1/carts/{cart_id}/events", json=body, headers=self.headers
        )
        if response.status_code != 202:
            raise RuntimeError(f"{cart_id}: {response.status_code} {response.text}")
        return dict(response.json())


def cadence(config: Config) -> dict[str, Any]:
    gap = config.step_gap_seconds
    return {
        "abandon_after": "10s",  # the validator's floor; events are backdated to shorten it
        "expire_after": "1h",
        "quiet_hours": {"start": "00:00", "end": "00:00"},
        "frequency_cap": None,
        "steps": [
            {"channel": "email", "delay": f"{gap}s"},
            {"channel": "sms", "delay": f"{2 * gap}s"},
            {"channel": "email", "delay": f"{3 * gap}s", "template": "cart_last_chance"},
        ],
    }


def shopper(i: int) -> dict[str, Any]:
    return {
        "email": f"shopper{i}@bench.example",
        "phone": f"+1415555{i:04d}",
        "timezone": "UTC",
    }


# --- the run ----------------------------------------------------------------------------------


async def run(config: Config, log: Any = print) -> Report:
    rng = random.Random(config.seed)
    report = Report(config=asdict(config))
    started = time.monotonic()
    keep = os.environ.get("FAULT_BENCH_KEEP")  # a directory to keep the logs and databases in
    with (
        contextlib.nullcontext(keep)
        if keep
        else tempfile.TemporaryDirectory(prefix="winback-fault-")
    ) as tmp:
        workdir = Path(tmp)
        cluster = Cluster(config, workdir)
        fakes = (
            FakeProviders(cluster.fakes_port, cluster.sendgrid_key, config.provider_latency)
            if config.providers == "fakes"
            else None
        )
        with fakes or contextlib.nullcontext():
            try:
                client = await cluster.start()
                log(f"cluster up in {workdir}: {[p.name for p in cluster.all()]}")
                await _journeys(config, cluster, client, rng, report, fakes, log)
            finally:
                cluster.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _journeys(
    config: Config,
    cluster: Cluster,
    client: Client,
    rng: random.Random,
    report: Report,
    fakes: FakeProviders | None,
    log: Any,
) -> None:
    front = Storefront(cluster.api_ports, report)
    retailer_id = f"fault{uuid.uuid4().hex[:6]}"
    created = await front.request(
        "POST",
        "/v1/retailers",
        json={"id": retailer_id, "name": "Fault Bench"},
        headers={"X-Admin-Token": ADMIN_TOKEN},
    )
    front.headers = {"X-API-Key": created.json()["api_key"]}
    if fakes is not None:
        fakes.event_urls = [
            f"http://127.0.0.1:{port}/v1/webhooks/sendgrid/{retailer_id}"
            for port in cluster.api_ports
        ]
    put = await front.request("PUT", "/v1/cadence", json=cadence(config), headers=front.headers)
    assert put.status_code == 201, put.text

    n = config.carts
    buyers = set(rng.sample(range(n), int(n * config.purchase_share)))
    ordered_at: dict[str, float] = {}  # cart -> when the order's 202 came back
    backdate = timedelta(seconds=10 - config.lead_seconds)
    cadence_span = config.lead_seconds + 3 * config.step_gap_seconds
    gate = asyncio.Semaphore(config.concurrency)
    ingest_done = asyncio.Event()
    ingested = 0

    async def one_cart(i: int) -> None:
        nonlocal ingested
        cart_id = f"c{i}"
        async with gate:
            await front.event(
                cart_id,
                {
                    "event_id": f"{cart_id}-add",
                    "type": "item_added",
                    "occurred_at": (datetime.now(UTC) - backdate).isoformat(),
                    "items": [{"sku": f"sku-{i}", "name": "Boots", "price": 80.0}],
                    "customer": shopper(i),
                    "consent": {"email": True, "sms": True, "voice": True},
                },
            )
            ingested += 1
        if i in buyers:
            await asyncio.sleep(rng.uniform(config.lead_seconds, cadence_span + 1))
            async with gate:
                await front.event(
                    cart_id,
                    {
                        "event_id": f"{cart_id}-order",
                        "type": "order_placed",
                        "order": {"order_id": f"o{i}", "value": 80.0},
                    },
                )
            ordered_at[cart_id] = time.time()

    async def in_flight() -> int:
        """Sends claimed in the last two seconds and not yet answered: a kill now strands
        them. (Older ``sending`` rows were stranded by an earlier kill and wait for a retry to
        settle them: counting those, kills after the first one targeted nothing.)"""
        from winback.messaging.models import Message

        since = datetime.now(UTC) - timedelta(seconds=2)
        query = select(func.count()).where(
            col(Message.retailer_id) == retailer_id,
            col(Message.status) == "sending",
            col(Message.claimed_at) > since,
        )
        with contextlib.suppress(Exception):  # SQLite busy: call it none
            async with engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())
        return 0

    async def kill_worker() -> None:
        """Kills a worker that is polling, restarts it, and waits until it polls again (on a
        busy machine a start takes a while; a kill before then would test nothing). With the
        fakes, the kill waits (up to 8 s) for a send in flight, so that it lands between a
        claim and its mark: right after a restart the worker is still replaying, and kills
        there never stranded a send. The outbox has no such window (its claim is the send)."""
        worker = rng.choice(cluster.workers)
        polls = worker.ready_count(POLLING)
        flying, give_up = 0, time.monotonic() + 8
        if fakes is not None:
            while (flying := await in_flight()) == 0 and time.monotonic() < give_up:
                await asyncio.sleep(0.05)
        else:
            await asyncio.sleep(rng.uniform(1, 3))
        worker.kill()
        report.faults.append(
            f"{time.monotonic() - t0:.0f}s SIGKILL {worker.name}"
            + (f" ({flying} in flight)" if fakes is not None else "")
        )
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        worker.start()
        deadline = time.monotonic() + 120
        while worker.ready_count(POLLING) <= polls and time.monotonic() < deadline:
            await asyncio.sleep(0.5)

    async def faults() -> None:
        """The API dies a third of the way into the ingest; half the worker kills land while
        carts are still coming in (the early carts are sending by then), the rest, and the dev
        server's restart, in the bursts after the ingest."""
        during = config.worker_kills // 2
        marks = sorted({n * (k + 1) // (during + 2) for k in range(during + 1)})
        api_mark, kill_marks = marks[0], marks[1:]
        for k, mark in enumerate([api_mark, *kill_marks]):
            while ingested < mark and not ingest_done.is_set():
                await asyncio.sleep(0.05)
            if k == 0:
                api = cluster.apis[0]
                api.kill()
                report.faults.append(f"{time.monotonic() - t0:.0f}s SIGKILL {api.name}")
                await asyncio.sleep(0.5)
                api.start()
            else:
                await kill_worker()
        await ingest_done.wait()
        window = cadence_span + 2
        after = config.worker_kills - len(kill_marks)
        moments = sorted(rng.uniform(0, window) for _ in range(after))
        begun = time.monotonic()
        for i, moment in enumerate(moments):
            await asyncio.sleep(max(0.0, begun + moment - time.monotonic()))
            await kill_worker()
            if i == len(moments) // 2:
                cluster.temporal.kill()
                report.faults.append(f"{time.monotonic() - t0:.0f}s SIGKILL temporal dev server")
                await asyncio.sleep(1)
                cluster.temporal.start()

    async def supervise() -> None:
        """A process manager's job: restart a child that exited on its own."""
        while True:
            await asyncio.sleep(1)
            for process in cluster.all():
                if not process.alive and process.proc is not None and not process.held_down:
                    process.start()

    t0 = time.monotonic()
    engine = make_engine(cluster.database_url)
    fault_task = asyncio.create_task(faults())
    supervisor = asyncio.create_task(supervise())
    try:
        ingest = [asyncio.create_task(one_cart(i)) for i in range(n)]
        await asyncio.gather(*[t for i, t in enumerate(ingest) if i not in buyers])
        ingest_done.set()
        log(f"ingest done at {time.monotonic() - t0:.1f}s")
        await asyncio.gather(*ingest)
        await fault_task
        log(f"faults done at {time.monotonic() - t0:.1f}s: {report.faults}")
        client = await _connect(f"127.0.0.1:{cluster.temporal_port}")
        states = await _settle(config, client, cluster.database_url, retailer_id, n, log)
    finally:
        supervisor.cancel()
        fault_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await engine.dispose()
    await _count(config, cluster, client, retailer_id, n, ordered_at, states, fakes, report)
    await front.http.aclose()


async def _settle(
    config: Config, client: Client, database_url: str, retailer_id: str, n: int, log: Any
) -> dict[str, Any]:
    """Waits until every cart has settled each follow-up step (a final message row) or was
    bought, reading the database; then asks the workflows of the others for their record."""
    from workflows.carts.cart_recovery import CartRecoveryWorkflow

    engine = make_engine(database_url)
    pending = {f"c{i}" for i in range(n)}
    deadline = time.monotonic() + config.timeout_seconds
    query = text(
        "SELECT c.cart_id, c.status, COUNT(m.id) AS settled FROM cart c LEFT JOIN message m "
        "ON m.retailer_id = c.retailer_id AND m.cart_id = c.cart_id AND m.status <> 'sending' "
        "WHERE c.retailer_id = :r GROUP BY c.cart_id, c.status"
    )
    try:
        while pending and time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # SQLite busy under the workers: next round
                async with engine.connect() as conn:
                    rows = (await conn.execute(query, {"r": retailer_id})).all()
                for row in rows:
                    if row.settled >= len(FOLLOW_UPS) or row.status == "ordered":
                        pending.discard(row.cart_id)
            if pending:
                await asyncio.sleep(2)
    finally:
        await engine.dispose()
    await asyncio.sleep(3)  # a bought cart's last in-flight step lands
    states: dict[str, Any] = {}
    gate = asyncio.Semaphore(10)  # one at a time took 10 s per unanswered cart

    async def ask(cart_id: str) -> None:
        handle = client.get_workflow_handle_for(
            CartRecoveryWorkflow.run, f"cart-{retailer_id}-{cart_id}"
        )
        async with gate:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                states[cart_id] = await handle.query(
                    CartRecoveryWorkflow.state, rpc_timeout=timedelta(seconds=10)
                )

    await asyncio.gather(*[ask(cart_id) for cart_id in sorted(pending)])
    log(f"settled; {len(pending)} carts never settled their cadence")
    for cart_id in sorted(pending)[:5]:
        state = states.get(cart_id)
        log(f"  {cart_id}: {state.stage if state else 'no answer'} {state.steps if state else ''}")
    return {"pending": pending, "states": states}


async def _count(
    config: Config,
    cluster: Cluster,
    client: Client,
    retailer_id: str,
    n: int,
    ordered_at: dict[str, float],
    states: dict[str, Any],
    fakes: FakeProviders | None,
    report: Report,
) -> None:
    engine = make_engine(cluster.database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, cart_id, step_index, channel, status, to_address, claimed_at, "
                    "resolution, error FROM message WHERE retailer_id = :r"
                ),
                {"r": retailer_id},
            )
        ).all()
    await engine.dispose()
    report.carts, report.ordered = n, len(ordered_at)
    report.stuck_rows = sum(1 for r in rows if r.status == "sending")
    report.settled_with_reason = sum(1 for r in rows if r.resolution)
    by_step = {(r.cart_id, r.step_index): r for r in rows if r.step_index in FOLLOW_UPS}

    # What reached the provider, per (cart, step), with when.
    reached: dict[tuple[str, int], list[float]] = {}
    if fakes is None:
        for r in rows:
            if r.step_index in FOLLOW_UPS and r.status not in ("sending", "failed"):
                at = _epoch(r.claimed_at)
                reached.setdefault((r.cart_id, r.step_index), []).append(at)
    else:
        row_of_id = {str(r.id): r for r in rows}
        phone_cart = {f"+1415555{i:04d}": f"c{i}" for i in range(n)}
        for d in fakes.deliveries:
            if d.channel == "email" and d.message_id in row_of_id:
                r = row_of_id[d.message_id]
                reached.setdefault((r.cart_id, r.step_index), []).append(d.at)
            elif d.channel == "sms" and d.to in phone_cart:
                reached.setdefault((phone_cart[d.to], 1), []).append(d.at)
    report.delivered = sum(len(v) for v in reached.values())
    report.duplicates = sum(len(v) - 1 for v in reached.values() if len(v) > 1)
    report.after_purchase = sum(
        1
        for (cart_id, _), times in reached.items()
        if cart_id in ordered_at
        for at in times
        if at > ordered_at[cart_id] + 0.001
    )

    pending, recorded_states = states["pending"], states["states"]
    report.stuck_carts = len(pending)
    for i in range(n):
        cart_id = f"c{i}"
        state = recorded_states.get(cart_id)
        recorded = {s.index: s for s in state.steps} if state is not None else {}
        for index in FOLLOW_UPS:
            if (cart_id, index) in reached:
                continue
            step = recorded.get(index)
            row = by_step.get((cart_id, index))
            if step is not None and step.outcome in ("skipped", "failed", "stopped"):
                continue  # recorded with its reason
            if row is not None and row.status == "failed" and (row.resolution or row.error):
                continue
            if row is None and cart_id in ordered_at:
                continue  # bought before the step was due: nothing to send
            report.lost += 1

    from workflows.carts.cart_recovery import CartRecoveryWorkflow

    statuses: Counter[str] = Counter()
    running: list[str] = []
    async for wf in client.list_workflows(f"WorkflowId STARTS_WITH 'cart-{retailer_id}-'"):
        status = wf.status.name if wf.status else "UNKNOWN"
        if status == "RUNNING":
            running.append(wf.id)
        else:
            statuses[status] += 1
    # A cart not bought ends at its expiry (1 h, the validator's floor), long after the run: a
    # running workflow is fine if every follow-up is recorded and only that timer is left.
    gate = asyncio.Semaphore(10)

    async def classify(workflow_id: str) -> None:
        handle = client.get_workflow_handle_for(CartRecoveryWorkflow.run, workflow_id)
        kind = "RUNNING mid-cadence or no answer"
        async with gate:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                state = await handle.query(
                    CartRecoveryWorkflow.state, rpc_timeout=timedelta(seconds=10)
                )
                if {s.index for s in state.steps} >= set(FOLLOW_UPS) and state.next_step is None:
                    kind = "RUNNING cadence done, until expiry"
        statuses[kind] += 1

    await asyncio.gather(*[classify(workflow_id) for workflow_id in running])
    report.workflow_statuses = dict(statuses)


def _epoch(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def format_report(report: Report) -> str:
    c = report.config
    db = "PostgreSQL" if (c["database_url"] or "").startswith("postgresql") else "SQLite"
    shape = f"{c['apis']} API, {c['workers']} worker"
    lines = [
        f"fault benchmark: {report.carts} carts, {c['providers']}, {db}, {shape}, "
        f"{report.seconds}s",
        f"  faults: {len(report.faults)} ({'; '.join(report.faults)})",
        f"  {'duplicates':<28}{report.duplicates}",
        f"  {'lost':<28}{report.lost}",
        f"  {'stuck rows (sending)':<28}{report.stuck_rows}",
        f"  {'stuck carts':<28}{report.stuck_carts}",
        f"  {'after purchase':<28}{report.after_purchase}",
        f"  {'delivered':<28}{report.delivered}",
        f"  {'carts bought mid-cadence':<28}{report.ordered}",
        f"  {'sends settled after a crash':<28}{report.settled_with_reason}",
        f"  {'API 5xx / unreachable':<28}{report.api_5xx} / {report.api_unreachable}",
        f"  {'workflow statuses':<28}{report.workflow_statuses}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench.fault_benchmark", description=__doc__)
    defaults = Config()
    parser.add_argument("--carts", type=int, default=defaults.carts)
    parser.add_argument("--providers", choices=["outbox", "fakes"], default=defaults.providers)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--apis", type=int, choices=[1, 2], default=defaults.apis)
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--event-grace", type=float, default=defaults.event_grace_seconds)
    parser.add_argument(
        "--provider-latency", type=float, default=defaults.provider_latency, metavar="SECONDS"
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout_seconds)
    parser.add_argument("--base-port", type=int, default=defaults.base_port)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    config = Config(
        carts=args.carts,
        providers=args.providers,
        database_url=args.database_url,
        workers=args.workers,
        apis=args.apis,
        worker_kills=args.worker_kills,
        concurrency=args.concurrency,
        event_grace_seconds=args.event_grace,
        provider_latency=args.provider_latency,
        timeout_seconds=args.timeout,
        base_port=args.base_port,
        seed=args.seed,
    )
    return config, args.json


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the run like Ctrl-C: every child is stopped


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    config, json_path = parse_args(argv)
    report = asyncio.run(run(config, log=lambda m: print(m, file=sys.stderr)))
    print(format_report(report))
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(report), indent=2, default=str))


if __name__ == "__main__":
    main()
