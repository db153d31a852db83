"""CPU per event, in process: ours against the bare endpoint, without a load generator.

    python -m bench.ingestion_cpu [--requests 300] [--batch-size 200]

On a shared machine wall-clock rates say more about the neighbours than about the code; the CPU
time one process spends per event does not (much). Both apps run in this process behind
``httpx.ASGITransport`` (the client's share of the CPU is in both figures alike), on one SQLite
file, the time-skipping Temporal server standing in for the cluster (minor edits and batches of
anonymous carts never call it). Prints CPU ms per event and ours / bare.
"""

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ITEMS = [{"sku": "TR-42", "name": "Trail shoe", "price": 89.9, "quantity": 1}]


async def cpu_per(call: Any, count: int) -> float:
    start = time.process_time()
    for i in range(count):
        await call(i)
    return (time.process_time() - start) / count * 1000


async def main(args: argparse.Namespace) -> None:
    from temporalio.testing import WorkflowEnvironment

    from bench.ingestion_apps import bare
    from winback.composition.stack import build_app
    from winback.platform.settings import Settings
    from winback.platform.temporal import DATA_CONVERTER

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    lifted = "100000000/hour"
    settings = Settings(
        database_url=os.environ["WINBACK_DATABASE_URL"],
        admin_token="bench-admin-token",  # type: ignore[arg-type]
        rate_limit_per_key=lifted,
        rate_limit_per_address=lifted,
        client_rate_limit_per_key=lifted,
        client_rate_limit_per_address=lifted,
        api_metrics_port=None,
        worker_metrics_port=None,
    )
    ours, baseline = build_app(settings, temporal=env.client), bare()
    transport = httpx.ASGITransport
    async with (
        ours.router.lifespan_context(ours),
        baseline.router.lifespan_context(baseline),
        httpx.AsyncClient(transport=transport(app=ours), base_url="http://o") as api,
        httpx.AsyncClient(transport=transport(app=baseline), base_url="http://b") as bare_api,
    ):
        created = await api.post(
            "/v1/retailers",
            json={"id": "cpu", "name": "CPU"},
            headers={"X-Admin-Token": "bench-admin-token"},
        )
        key = created.json()["api_key"]
        pk = (
            await api.post(
                "/v1/publishable-keys",
                json={"allowed_origins": ["https://shop.example"]},
                headers={"X-API-Key": key},
            )
        ).json()["key"]

        def edit(i: int, tag: str) -> dict[str, Any]:
            return {"event_id": f"{tag}-{i}", "type": "item_added", "items": ITEMS}

        async def ours_minor(i: int) -> None:
            r = await api.post(
                f"/v1/carts/m-{i % 50}/events", json=edit(i, "m"), headers={"X-API-Key": key}
            )
            assert r.status_code == 202, r.text

        async def ours_first(i: int) -> None:
            body = {
                **edit(i, "f"),
                "customer": {"email": f"f{i}@example.com"},
                "consent": {"email": True},
            }
            r = await api.post(f"/v1/carts/f-{i}/events", json=body, headers={"X-API-Key": key})
            assert r.status_code == 202, r.text

        async def ours_first_started(i: int) -> None:
            """A first event and its share of the relay's work (the workflow start)."""
            await ours_first(i)
            if i % 10 == 9:
                await ours.state.cart_relay.drain()

        async def bare_insert(i: int) -> None:
            r = await bare_api.post(f"/bare/carts/m-{i % 50}/events", json=edit(i, "b"))
            assert r.status_code == 202, r.text

        async def ours_batch(i: int) -> None:
            events = [{"cart_id": f"b-{i}-{j}", **edit(j, f"b{i}")} for j in range(args.batch_size)]
            body = json.dumps({"visitor": "cpu-bench-visitor-0123", "events": events})
            r = await api.post(
                f"/v1/client/events:batch?key={pk}",
                content=body,
                headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
            )
            assert r.status_code == 202 and r.json()["stored"] == args.batch_size, r.text

        warm_up = (ours_minor, bare_insert, ours_first_started) + (
            () if args.no_batch else (ours_batch,)
        )
        for warm in warm_up:  # first compiles, first imports
            await warm(10**6)
        await ours.state.cart_relay.drain()
        profile = cProfile.Profile() if args.profile else None
        bare_ms = await cpu_per(bare_insert, args.requests)
        if profile:
            profile.enable()
        minor_ms = await cpu_per(ours_minor, args.requests)
        first_ms = await cpu_per(ours_first_started, args.requests)
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        batches = max(3, args.requests // args.batch_size)
        batch_ms = (
            float("nan") if args.no_batch else await cpu_per(ours_batch, batches) / args.batch_size
        )
    await env.shutdown()
    print(f"CPU ms per event, in process, {args.requests} requests, batch of {args.batch_size}")
    print("| path | CPU ms / event | events/s per CPU core | ratio to bare (events/s) |")
    print("|---|---|---|---|")
    rows = (
        ("bare insert", bare_ms),
        ("minor edit", minor_ms),
        ("first event, with its workflow start", first_ms),
        ("batch", batch_ms),
    )
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} | {1000 / ms:.0f} | {bare_ms / ms:.2f} |")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-batch", action="store_true", help="for a tree without the route")
    parser.add_argument(
        "--profile", help="cProfile the minor edits and first events into this file"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="winback-cpu-"))
    url = f"sqlite+aiosqlite:///{tmp}/cpu.db"
    os.environ["WINBACK_DATABASE_URL"] = url
    from bench.ingestion_apps import create_bare_table
    from winback.platform.migrations import upgrade

    upgrade(url)  # before the event loop: alembic runs its own
    create_bare_table(url)
    asyncio.run(main(args))


if __name__ == "__main__":
    run()
