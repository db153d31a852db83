"""``winback worker`` and ``winback api`` run on their own, as an operator starts them: on a
machine with no data directory yet and before Temporal is up, each makes its directory,
migrates the database, and waits for Temporal, saying what it waits for, instead of exiting.
"""

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from winback.composition.tables import metadata
from winback.platform.db import make_engine
from winback.platform.migrations import current_revision, head_revision

WINBACK = Path(sys.executable).parent / "winback"
WAITING = re.compile(
    rb"waiting for Temporal at (\S+) \(namespace '(\w+)'\).*retrying in ([\d.]+) s"
)


def free_port() -> int:
    """A port nothing listens on (bound and released, so it is free right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def tables_and_revision(url: str) -> tuple[set[str], str | None]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            revision = await conn.run_sync(current_revision)
    finally:
        await engine.dispose()
    return tables, revision


@pytest.mark.parametrize("command", ["worker", "api"])
async def test_started_before_temporal_it_makes_its_data_directory_and_waits(
    command: str, tmp_path: Path
) -> None:
    temporal_address = f"127.0.0.1:{free_port()}"
    database = tmp_path / "data" / "not-made-yet" / "winback.db"
    url = f"sqlite+aiosqlite:///{database}"
    env = {
        **os.environ,
        "WINBACK_TEMPORAL_ADDRESS": temporal_address,
        "WINBACK_TEMPORAL_NAMESPACE": "shop",
        "WINBACK_DATABASE_URL": url,
        "WINBACK_WORKER_METRICS_PORT": str(free_port()),
        "WINBACK_API_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        str(WINBACK),
        command,
        cwd=tmp_path,  # no .env from the checkout
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr
    seen: list[bytes] = []
    waits: list[re.Match[bytes]] = []
    try:
        async with asyncio.timeout(120):  # a generous deadline for a loaded machine
            while len(waits) < 2:
                line = await process.stderr.readline()
                assert line, b"".join(seen).decode()  # it exited instead of waiting
                seen.append(line)
                if match := WAITING.search(line):
                    waits.append(match)

        assert process.returncode is None, "it must keep waiting, not exit"
        assert [w.group(1).decode() for w in waits] == [temporal_address] * 2
        assert {w.group(2) for w in waits} == {b"shop"}
        first, second = (float(w.group(3)) for w in waits)
        assert second > first, "it backs off between attempts"

        assert database.parent.is_dir()
        tables, revision = await tables_and_revision(url)
        assert revision == head_revision()
        assert set(metadata.tables) <= tables

        process.send_signal(signal.SIGTERM)  # what `docker stop` sends: it stops waiting
        async with asyncio.timeout(60):
            assert await process.wait() == 0, b"".join(seen).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
