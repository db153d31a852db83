"""Ingestion benchmark: our event routes against a bare endpoint, under ``wrk``, in one run.

    python -m bench.ingestion [--db sqlite,postgres] [--procs 1,2,4] [--duration 10]
                              [--connections 32] [--threads 2] [--batch-size 200]
                              [--scenarios minor,first,batch] [--json out.json]

Per database and per number of API processes (``uvicorn --workers N``), on one Temporal dev
server and one worker (``winback worker``, started only for the ``first`` scenario's sake, and
left running so every scenario shares the machine with it):

- ``bare``: FastAPI + one SQLModel insert (``bench/ingestion_apps.py``), same body, same engine;
- ``minor``: ``POST /v1/carts/{id}/events`` ``item_added`` on one of 500 existing anonymous carts
  (no workflow is told anything: the row changes, Temporal does not);
- ``first``: the same route, a new cart with the shopper's email each time: the API stores it,
  hands the cart to its relay (``winback.carts.relay``) and answers; the relay **starts** the
  cart's workflow (``start_workflow`` on the dev server) in the background. The row measures
  acceptance; after wrk stops the bench waits until every first cart's workflow is started and
  prints the backlog, how long it took and the starts/s the relay and dev server sustained,
  then until the worker and the dev server are idle again (their new workflows' first tasks
  would otherwise run into the next row);
- ``batch``: ``POST /v1/client/events:batch`` (publishable key, ``text/plain`` JSON as
  ``navigator.sendBeacon`` sends it), ``--batch-size`` events of as many carts per request.

Each scenario prints requests/s (events/s for the batch), p50/p99 and its ratio to ``bare`` of
the same database and process count. Only ratios from one run mean anything on a shared box:
see bench/README.md, "Ingestion".
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "bench-admin-token"
POSTGRES_URL = os.environ.get(
    "WINBACK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MINOR_CARTS = 500
ORIGIN = "https://shop.bench.example"

LUA = r"""
local counter = 0
local threads = {}
local SCENARIO = "%(scenario)s"
local PREFIX = "%(prefix)s"
local PATH = "%(path)s"
local HEADERS = %(headers)s
local CARTS = %(carts)d
local BATCH = %(batch)d
local ITEMS = '[{"sku":"TR-42","name":"Trail shoe","price":89.9,"quantity":'

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
end

local function body_for(id, cart)
  if SCENARIO == "first" then
    return '{"event_id":"' .. id .. '","type":"item_added","items":' .. ITEMS .. '1}],' ..
      '"customer":{"email":"' .. id .. '@example.com"},"consent":{"email":true}}'
  end
  return '{"event_id":"' .. id .. '","type":"item_added","items":' .. ITEMS ..
    (counter %% 5 + 1) .. '}],"page":"/p/' .. counter .. '"}'
end

function request()
  counter = counter + 1
  local id = string.format("%%s-%%d-%%d", PREFIX, tid, counter)
  if SCENARIO == "batch" then
    local parts = {}
    for i = 1, BATCH do
      local eid = id .. "-" .. i
      local cart = "b-" .. tid .. "-" .. (counter %% 2000) .. "-" .. i
      parts[i] = '{"cart_id":"' .. cart .. '","event_id":"' .. eid ..
        '","type":"item_added","items":' .. ITEMS .. '1}]}'
    end
    local body = '{"visitor":"bench-visitor-' .. tid .. '-0123456789","events":[' ..
      table.concat(parts, ",") .. ']}'
    return wrk.format("POST", PATH, HEADERS, body)
  end
  local cart
  if SCENARIO == "first" then
    cart = "f-" .. id
  else
    cart = "m-" .. math.random(0, CARTS - 1)
  end
  return wrk.format("POST", string.gsub(PATH, "CART", cart), HEADERS, body_for(id, cart))
end

function done(summary, latency, requests)
  io.write(string.format(
    '\nRESULT {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    database: str
    processes: int
    scenario: str
    requests_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: float | None = None
    drain: "Drain | None" = None


@dataclass
class Drain:
    """The ``first`` scenario's workflow starts, which the relay makes after the 202s."""

    carts: int  # first carts stored during the run
    backlog: int  # of them, not yet started when wrk stopped
    seconds: float  # from wrk's end until every one was started
    starts_per_s: float  # carts / (wrk's duration + seconds): what relay + dev server sustained


def wait_for_starts(url: str, retailer: str, wrk_seconds: float, timeout: float = 600) -> Drain:
    """Polls the database until no first cart of ``retailer`` waits for its workflow start."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("+aiosqlite", ""))
    query = text(
        "SELECT COUNT(*), SUM(CASE WHEN workflow_started THEN 0 ELSE 1 END) FROM cart "
        "WHERE retailer_id = :r AND cart_id LIKE 'f-%'"
    )
    began = time.monotonic()
    backlog: int | None = None
    try:
        while True:
            with engine.connect() as conn:
                carts, waiting = conn.execute(query, {"r": retailer}).one()
            waiting = int(waiting or 0)
            backlog = waiting if backlog is None else backlog
            seconds = time.monotonic() - began
            if not waiting or seconds > timeout:
                break
            time.sleep(0.25)
    finally:
        engine.dispose()
    if waiting:
        log(f"  first: {waiting} of {carts} carts still not started after {timeout:.0f} s")
    started = int(carts) - waiting
    return Drain(
        carts=int(carts),
        backlog=backlog,
        seconds=round(seconds, 1),
        starts_per_s=round(started / (wrk_seconds + seconds), 1),
    )


def wait_quiet(pids: list[int], timeout: float = 300) -> None:
    """Waits until these processes use under 5% of a core between them (the worker and the
    dev server working off the ``first`` row's new workflows), so the next row has the box."""
    from bench.procs import cpu_seconds

    deadline = time.monotonic() + timeout
    before = sum(cpu_seconds(pid) for pid in pids)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = sum(cpu_seconds(pid) for pid in pids)
        if now - before < 0.05:
            return
        before = now
    log(f"  the worker and the dev server were still busy after {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


PIDS: dict[str, int] = {}


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], name: str, logs: Path) -> Iterator[None]:
    out = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    PIDS["api" if name.startswith("winback-") else name] = proc.pid
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {timeout:.0f} s")


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.3)
    raise SystemExit(f"port {port} did not open in {timeout:.0f} s")


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_URL)
    name = f"winback_bench_{uuid.uuid4().hex[:8]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_wrk(
    args: argparse.Namespace, url: str, lua: str, tmp: Path, connections: int
) -> dict[str, Any]:
    script = tmp / f"{uuid.uuid4().hex[:8]}.lua"
    script.write_text(lua)
    command = [
        "wrk",
        f"-t{min(args.threads, connections)}",
        f"-c{connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def lua_for(scenario: str, path: str, headers: dict[str, str], batch: int = 1) -> str:
    table = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"
    return LUA % {
        "scenario": scenario,
        "prefix": f"{scenario}-{uuid.uuid4().hex[:6]}",
        "path": path,
        "headers": table,
        "carts": MINOR_CARTS,
        "batch": batch,
    }


@contextlib.contextmanager
def profiled(args: argparse.Namespace, name: str, pid: int | None) -> Iterator[None]:
    """``py-spy record`` of the API process (and its uvicorn workers) while the load runs."""
    if not args.profile or pid is None:
        yield
        return
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(BIN / "py-spy"),
            "record",
            "--subprocesses",
            "--nonblocking",
            "-p",
            str(pid),
            "-d",
            str(args.duration),
            "-f",
            "speedscope",
            "-o",
            str(args.profile / f"{name}.speedscope.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.wait(timeout=60)


def measure(
    args: argparse.Namespace,
    db: str,
    procs: int,
    scenario: str,
    url: str,
    lua: str,
    tmp: Path,
    per_request: int = 1,
) -> Result:
    with profiled(args, f"{db}-{procs}-{scenario}", PIDS.get("api")):
        connections = args.batch_connections if scenario == "batch" else args.connections
        raw = run_wrk(args, url, lua, tmp, connections)
    seconds = raw["duration_us"] / 1e6
    rps = raw["requests"] / seconds
    result = Result(
        database=db,
        processes=procs,
        scenario=scenario,
        requests_per_s=round(rps, 1),
        events_per_s=round(rps * per_request, 1),
        p50_ms=round(raw["p50_us"] / 1000, 1),
        p99_ms=round(raw["p99_us"] / 1000, 1),
        errors=raw["status_errors"] + raw["socket_errors"],
    )
    log(f"  {db} x{procs} {scenario}: {result}")
    return result


def uvicorn_args(factory: str, port: int, procs: int) -> list[str]:
    return [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        "--factory",
        f"bench.ingestion_apps:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(procs),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def setup_retailer(base: str) -> tuple[str, str, str]:
    """A retailer (its id), its API key, a publishable key for the bench origin, and the minor
    carts."""
    with httpx.Client(base_url=base, timeout=120) as http:
        retailer = f"bench{uuid.uuid4().hex[:6]}"
        created = http.post(
            "/v1/retailers",
            json={"id": retailer, "name": "Bench", "country": "ES"},
            headers={"X-Admin-Token": ADMIN_TOKEN},
        )
        created.raise_for_status()
        api_key = created.json()["api_key"]
        pk = http.post(
            "/v1/publishable-keys",
            json={"allowed_origins": [ORIGIN]},
            headers={"X-API-Key": api_key},
        )
        pk.raise_for_status()
        # The minor-edit carts, in one batch (the browser route: each is claimed by the bench's
        # "browser"; the retailer's route below edits them all the same).
        seeded = http.post(
            "/v1/client/events:batch",
            params={"key": pk.json()["key"]},
            content=json.dumps(
                {
                    "visitor": "bench-seed-visitor-0123456789",
                    "events": [
                        {
                            "cart_id": f"m-{i}",
                            "event_id": f"seed-{i}",
                            "type": "item_added",
                            "items": [{"sku": "TR-42", "name": "Trail shoe", "price": 89.9}],
                        }
                        for i in range(MINOR_CARTS)
                    ],
                }
            ),
            headers={"Content-Type": "text/plain", "Origin": ORIGIN},
        )
        seeded.raise_for_status()
        assert seeded.json()["stored"] == MINOR_CARTS, seeded.text
        return retailer, api_key, pk.json()["key"]


def analyze(url: str) -> None:
    """PostgreSQL's planner statistics, as autovacuum keeps them on any database older than a
    minute. A database made seconds ago has none: the planner then takes the cart table for
    empty and reads every row of the retailer to find a batch's 200 carts, a cost that grows
    with the run and says nothing about the route (seen: 17 ms a batch, against 1.6 after)."""
    if not url.startswith("postgresql"):
        return
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE")


def run_database(args: argparse.Namespace, db: str, tmp: Path, done: list[Result]) -> list[Result]:
    """``done``: the earlier databases' rows, which a failure here must not lose."""
    results: list[Result] = []
    with database(db, tmp) as url:
        env = {
            **os.environ,
            "WINBACK_DATABASE_URL": url,
            "WINBACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "WINBACK_DATA_DIR": str(tmp / "data"),
            "WINBACK_RATE_LIMIT_PER_KEY": "100000000/hour",
            "WINBACK_RATE_LIMIT_PER_ADDRESS": "100000000/hour",
            "WINBACK_CLIENT_RATE_LIMIT_PER_KEY": "100000000/hour",
            "WINBACK_CLIENT_RATE_LIMIT_PER_ADDRESS": "100000000/hour",
            "WINBACK_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:6]}",
            "WINBACK_REDRIVE_EVERY_SECONDS": "0",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run([str(BIN / "winback"), "migrate"], env=env, cwd=ROOT, check=True)
        from bench.ingestion_apps import create_bare_table

        create_bare_table(url)
        temporal_port = free_port()
        env["WINBACK_TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
        env["WINBACK_WORKER_METRICS_PORT"] = str(free_port())
        from winback.platform.temporal import search_attribute_flags

        temporal = [
            str(BIN / "temporal"),
            "server",
            "start-dev",
            "--headless",
            "--port",
            str(temporal_port),
            "--log-level",
            "error",
            *search_attribute_flags(),
        ]
        with contextlib.ExitStack() as stack:
            stack.enter_context(process(temporal, env, f"temporal-{db}", tmp))
            wait_port(temporal_port)
            stack.enter_context(process([str(BIN / "winback"), "worker"], env, f"worker-{db}", tmp))
            for procs in args.procs:
                try:
                    results += run_processes(args, db, procs, env, tmp)
                except (SystemExit, subprocess.CalledProcessError, httpx.HTTPError) as err:
                    log(f"  {db} x{procs}: gave up ({err}); the table keeps the rest")
    return results


def run_processes(
    args: argparse.Namespace, db: str, procs: int, env: dict[str, str], tmp: Path
) -> list[Result]:
    results = []
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process(uvicorn_args("bare", port, procs), env, f"bare-{db}-{procs}", tmp):
        wait_http(f"{base}/docs")
        lua = lua_for("bare", "/bare/carts/CART/events", {"Content-Type": "application/json"})
        bare = measure(args, db, procs, "bare", base + "/", lua, tmp)
        results.append(bare)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process(uvicorn_args("winback", port, procs), env, f"winback-{db}-{procs}", tmp):
        wait_http(f"{base}/healthz")
        retailer, api_key, pk = setup_retailer(base)
        analyze(env["WINBACK_DATABASE_URL"])
        json_headers = {"Content-Type": "application/json", "X-API-Key": api_key}
        for scenario in args.scenarios:
            if scenario == "batch":
                lua = lua_for(
                    "batch",
                    f"/v1/client/events:batch?key={pk}",
                    {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
                    args.batch_size,
                )
                result = measure(args, db, procs, "batch", base + "/", lua, tmp, args.batch_size)
                result.ratio = round(result.events_per_s / bare.requests_per_s, 2)
            else:
                lua = lua_for(scenario, "/v1/carts/CART/events", json_headers)
                result = measure(args, db, procs, scenario, base + "/", lua, tmp)
                result.ratio = round(result.requests_per_s / bare.requests_per_s, 2)
                if scenario == "first":  # the 202s are in; the starts may still be queued
                    result.drain = wait_for_starts(
                        env["WINBACK_DATABASE_URL"], retailer, args.duration
                    )
                    log(f"  {db} x{procs} first, workflow starts: {result.drain}")
                    # Thousands of new workflows' first tasks would run into the next row.
                    wait_quiet([PIDS[f"worker-{db}"], PIDS[f"temporal-{db}"]])
            results.append(result)
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| db | procs | scenario | req/s | events/s | p50 ms | p99 ms | errors | ratio to bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = "1.00" if r.scenario == "bare" else f"{r.ratio:.2f}"
        lines.append(
            f"| {r.database} | {r.processes} | {r.scenario} | {r.requests_per_s} | "
            f"{r.events_per_s} | {r.p50_ms} | {r.p99_ms} | {r.errors} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--procs", default="1,2,4")
    parser.add_argument("--scenarios", default="minor,first,batch")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument(
        "--batch-connections",
        type=int,
        default=4,
        help="connections for the batch scenario (a few beacons in flight carry many events)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of our API into this dir")
    args = parser.parse_args()
    args.procs = [int(p) for p in args.procs.split(",")]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="winback-ingestion-"))
    results: list[Result] = []
    try:
        for db in args.db.split(","):
            results += run_database(args, db, tmp, results)
    finally:
        if args.keep:
            log(f"logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        report(args, results)


def report(args: argparse.Namespace, results: list[Result]) -> None:
    """The table of what was measured (also what was, when a later stage failed)."""
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; batch: "
        f"{args.batch_size} events a request, {args.batch_connections} connections, ratio in "
        "events/s; ratio = ours / bare (same db, same processes, same run)"
    )
    print(table(results))
    for r in results:
        if r.drain is not None:
            print(
                f"{r.database} x{r.processes} first: {r.drain.carts} carts accepted, "
                f"{r.drain.backlog} not yet started when wrk stopped, all started "
                f"{r.drain.seconds} s later: {r.drain.starts_per_s} workflow starts/s sustained"
            )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
