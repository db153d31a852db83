"""Brings the app database to the newest migration (``migrations/``), one process at a time.

The API, the workers and ``winback migrate`` may all start at the same moment on a fresh
database. Each takes a lock before it looks at the schema (PostgreSQL: a session advisory lock;
SQLite: ``flock`` on a file beside the database), so the first one upgrades and the others find
the schema at head and do nothing. ``migrations/env.py`` takes the lock, so ``alembic upgrade``
by hand is just as safe.
"""

import asyncio
import fcntl
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(migrations.__file__).parent
# Any constant bigint; only Winback's migrators take it.
ADVISORY_LOCK_KEY = 7202611


class UnversionedDatabaseError(RuntimeError):
    """The database has Winback's tables but no migration history (made before migrations)."""


def sqlite_file(url: str | URL) -> Path | None:
    """The SQLite database file of ``url``; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def ensure_data_directory(url: str) -> None:
    """Creates the SQLite file's directory, so a process started on a new machine just runs."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def alembic_config(database_url: str | None = None, *, at_start: bool = False) -> Config:
    """Alembic's configuration without a file: the migrations shipped in the package.

    Without ``database_url``, ``migrations/env.py`` reads ``WINBACK_DATABASE_URL``. ``at_start``
    (a process upgrading as it starts) refuses a database made before migrations, with a way
    out, and leaves alone one that a newer release has already migrated further.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    config.attributes["at_start"] = at_start
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str) -> bool:
    """Upgrades to head (blocking; ``migrate`` is the async form). Safe to run concurrently.

    False when a newer release had already migrated the database further (left as it is).
    """
    ensure_data_directory(database_url)
    config = alembic_config(database_url, at_start=True)
    command.upgrade(config, "head")
    return not config.attributes.get("newer_than_this_release")


async def migrate(database_url: str) -> None:
    """Upgrades to head from async code (Alembic's env runs its own event loop, in a thread)."""
    if await asyncio.to_thread(upgrade, database_url):
        log.info("database schema at head (%s)", head_revision())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _lock_beside(database: Path) -> IO[str]:
    """An exclusive ``flock`` on ``<database>.migrate.lock``, held until the file is closed.

    A lock file rather than ``BEGIN EXCLUSIVE``: Alembic runs SQLite DDL outside a transaction,
    and the lock must also cover creating the database file itself.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    lock_file = open(database.with_name(database.name + ".migrate.lock"), "a")  # noqa: SIM115
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
    except BaseException:
        lock_file.close()
        raise
    return lock_file


@asynccontextmanager
async def migration_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to migrate on, held by one process at a time until the block ends."""
    path = sqlite_file(engine.url)
    if path is not None:
        lock_file = await asyncio.to_thread(_lock_beside, path)
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            lock_file.close()  # releases the lock
        return
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            await conn.commit()  # the lock is the session's; Alembic runs its own transaction
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    await conn.rollback()
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                await conn.commit()
        else:
            yield conn


__all__ = [
    "UnversionedDatabaseError",
    "alembic_config",
    "current_revision",
    "ensure_data_directory",
    "head_revision",
    "migrate",
    "migration_lock",
    "sqlite_file",
    "upgrade",
]
