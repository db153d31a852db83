"""Alembic's environment: Winback's tables, Winback's database, one migrator at a time.

The URL is ``config.attributes["database_url"]`` when a caller passes one
(``winback.platform.migrations``), else ``WINBACK_DATABASE_URL`` through Winback's settings, so
``alembic`` on the command line talks to the same database as the app. It runs on the app's own
async engine (aiosqlite or psycopg) under the migration lock.
"""

import asyncio
import logging
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from winback.composition.tables import metadata
from winback.platform.db import UTCDateTime, make_engine
from winback.platform.migrations import (
    UnversionedDatabaseError,
    ensure_data_directory,
    migration_lock,
)
from winback.platform.settings import Settings

config = context.config
log = logging.getLogger("winback.migrations")
if not logging.getLogger().handlers:  # the bare `alembic` command: say what it runs
    logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")


def database_url() -> str:
    return str(config.attributes.get("database_url") or Settings().database_url)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Column types as the database stores them, in plain SQLAlchemy.

    A migration describes what is on disk, and must still run after the Python type behind a
    column is renamed or moved (as the domain reorganisation just did), so our TypeDecorators
    are written out as their storage type rather than imported from the app.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):  # SQLModel's str columns
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(connection: Connection | None = None, **kwargs: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_item=render_item,
        compare_type=True,
        # SQLite alters a table by rebuilding it; batch mode writes migrations that do that.
        render_as_batch=True,
        **kwargs,
    )


def _refuse_unversioned(connection: Connection) -> None:
    """A database made by ``create_all`` before migrations: say so, instead of "table exists"."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and tables & set(metadata.tables):
        raise UnversionedDatabaseError(
            f"the database {connection.engine.url.render_as_string()} has Winback's tables "
            "but no migration history: it was created before migrations. A local dev database "
            "can be deleted (rm -r .winback); one whose schema matches the first migration can "
            "be marked with `alembic stamp 0001` (WINBACK_DATABASE_URL pointing at it)."
        )


def _revisions_this_code_does_not_know(connection: Connection) -> list[str]:
    """The database's revisions missing from ``versions/``: a newer release migrated it."""
    script = ScriptDirectory.from_config(config)
    unknown = []
    for revision in MigrationContext.configure(connection).get_current_heads():
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    return unknown


def _run(connection: Connection) -> None:
    if config.attributes.get("at_start"):  # a Winback process starting, not `alembic` by hand
        _refuse_unversioned(connection)
        newer = _revisions_this_code_does_not_know(connection)
        connection.commit()  # the look began a transaction; Alembic must begin its own
        config.attributes["newer_than_this_release"] = newer
        if newer:
            # An older replica restarting during a roll-out: the new release's migrations are
            # written to keep the previous code working, so run on rather than crash-loop.
            log.warning(
                "the database is at revision %s, newer than this release knows (head %s); "
                "leaving the schema as it is",
                ", ".join(newer),
                ScriptDirectory.from_config(config).get_current_head(),
            )
            return
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    ensure_data_directory(url)
    engine = make_engine(url)
    try:
        async with migration_lock(engine) as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():  # `alembic upgrade head --sql`: the SQL, for a DBA to run
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online(database_url()))
