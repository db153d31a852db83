"""Open carts against the worker's and the dev server's memory.

    python -m bench.worker_memory [--levels 1000,5000,10000] [--cache 1000] [--concurrency 64]
                                  [--server-db FILE]

Starts our production worker in its own process (``bench.worker_process ours``, with
``WINBACK_WORKER_MAX_CACHED_WORKFLOWS=--cache``) and a dev server, then opens carts (each parks
on its abandonment timer, an hour away, as a real open cart does) until each level is reached,
and reads both processes' RSS from ``/proc`` once the worker is idle. Prints RSS per level and
the slope between levels (MB per 1,000 open carts): past the sticky cache the worker's slope
should be ~0, and the server's is what an in-memory dev server pays per open workflow (a real
cluster keeps them in its database, not its memory). ``--server-db FILE`` gives the dev server a
SQLite file instead, as ``winback dev`` runs it: the in-memory one gave out near 97k open carts.
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import dev_server, dev_server_pid, rss_mb, settle, worker_process
from bench.workflow_cost import start_many


async def run(args: argparse.Namespace) -> dict[str, Any]:
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[dict[str, float]] = []
    async with (
        dev_server(Path(args.server_db) if args.server_db else None) as env,
        worker_process(
            "ours",
            env.client.service_client.config.target_host,
            {"WINBACK_WORKER_MAX_CACHED_WORKFLOWS": str(args.cache)},
        ) as worker,
    ):
        server = dev_server_pid({worker.pid})
        await settle(worker)
        rows.append({"open_carts": 0, "worker_mb": worker.rss(), "server_mb": rss_mb(server)})
        opened, t0 = 0, time.perf_counter()
        for level in levels:
            await start_many(env.client, worker, level - opened, args.concurrency, None)
            opened = level
            await settle(worker)
            row = {
                "open_carts": level,
                "worker_mb": worker.rss(),
                "server_mb": rss_mb(server),
                "elapsed_s": time.perf_counter() - t0,
            }
            rows.append(row)
            print(f"  {row}", file=sys.stderr)
        warnings = worker.new_warnings()
    return {"config": vars(args), "rows": rows, "warnings": warnings}


def report(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        f"worker max_cached_workflows = {result['config']['cache']}",
        f"{'open carts':>12}{'worker RSS MB':>16}{'server RSS MB':>16}"
        f"{'worker MB/1k':>16}{'server MB/1k':>16}",
    ]
    for before, row in zip([None, *rows], rows, strict=False):
        slope_w = slope_s = ""
        if before is not None and row["open_carts"] > before["open_carts"]:
            k = (row["open_carts"] - before["open_carts"]) / 1000
            slope_w = f"{(row['worker_mb'] - before['worker_mb']) / k:.2f}"
            slope_s = f"{(row['server_mb'] - before['server_mb']) / k:.2f}"
        lines.append(
            f"{row['open_carts']:>12}{row['worker_mb']:>16.1f}{row['server_mb']:>16.1f}"
            f"{slope_w:>16}{slope_s:>16}"
        )
    lines.append(f"worker warnings: {result['warnings']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1000,5000,10000")
    parser.add_argument("--cache", type=int, default=1000, help="max_cached_workflows")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--server-db", help="the dev server's SQLite file (default: in memory)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
