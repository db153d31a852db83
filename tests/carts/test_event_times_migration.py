"""Migration 0011: cart events the beacon batch stored on SQLite with "T" in their times are
rewritten in the stored form, so they sort among the others again."""

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text

from winback.platform.db import make_engine
from winback.platform.migrations import alembic_config, ensure_data_directory


async def test_times_with_a_t_are_rewritten_and_sort_with_the_rest(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'winback.db'}"
    ensure_data_directory(url)
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0010")
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO retailer (id, name, timezone, country, cart_url_template, "
                "webhook_secret, created_at) VALUES ('r', 'R', 'UTC', 'US', 'x', 's', "
                "CURRENT_TIMESTAMP)"
            )
        )
        for event_id, at in (
            ("batch", "2026-12-02T01:47:00.500000"),
            ("orm", "2026-12-02 01:48:00"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO cartevent (retailer_id, cart_id, event_id, type, occurred_at, "
                    "received_at, payload) VALUES ('r', 'c', :e, 'activity', :at, :at, '{}')"
                ),
                {"e": event_id, "at": at},
            )
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_id, occurred_at, received_at FROM cartevent ORDER BY occurred_at"
                )
            )
        ).all()
    await engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("batch", "2026-12-02 01:47:00.500000", "2026-12-02 01:47:00.500000"),
        ("orm", "2026-12-02 01:48:00", "2026-12-02 01:48:00"),
    ]
