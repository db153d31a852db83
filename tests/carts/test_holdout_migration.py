"""The holdout migration: retailers that existed before it get a secret salt of their own."""

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text

from winback.platform.db import make_engine
from winback.platform.migrations import alembic_config, ensure_data_directory


async def test_existing_retailers_get_distinct_salts_and_carts_no_group(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'winback.db'}"
    ensure_data_directory(url)
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
    engine = make_engine(url)
    async with engine.begin() as conn:
        for retailer_id in ("one", "two"):
            await conn.execute(
                text(
                    "INSERT INTO retailer (id, name, timezone, country, cart_url_template, "
                    "webhook_secret, created_at) VALUES (:id, :id, 'UTC', 'US', 'x', 's', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": retailer_id},
            )
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    async with engine.connect() as conn:
        salts = (await conn.execute(text("SELECT holdout_salt FROM retailer"))).scalars().all()
        columns = (await conn.execute(text("PRAGMA table_info(cart)"))).all()
    await engine.dispose()
    assert len(salts) == 2 and all(salts) and len(set(salts)) == 2
    assert {"holdout_bucket", "holdout_group"} <= {c[1] for c in columns}
