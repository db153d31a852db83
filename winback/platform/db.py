"""The app database: an async SQLAlchemy engine over SQLite (default) or PostgreSQL."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import DateTime, event, select, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.platform.clock import as_utc

SessionFactory = async_sessionmaker[AsyncSession]

# Every constraint gets a predictable name, so that a later migration can drop or alter it on
# SQLite too (Alembic's batch mode rebuilds a table and must name what it leaves out). Set here
# because every table module imports this one (through ``columns``) before it defines a table.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always gives back an aware datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def make_engine(url: str, *, busy_timeout: float = 30.0) -> AsyncEngine:
    """``busy_timeout``: how long a SQLite writer waits for another's lock before it fails
    with "database is locked" (the API answers that with a 503, see ``is_write_conflict``)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_WRITERS: "WeakKeyDictionary[Engine, asyncio.Lock]" = WeakKeyDictionary()


def sqlite_writer(session: SAAsyncSession) -> AbstractAsyncContextManager[object]:
    """One writing transaction at a time per process on SQLite (a no-op on PostgreSQL).

    SQLite has one write lock per database. Writers that find it taken wait in SQLite's busy
    handler, which sleeps and polls (up to 100 ms a nap): with 32 concurrent requests the lock
    sat free most of the time while every waiter slept, and one request could wait seconds.
    Queued on an ``asyncio.Lock`` instead, the next writer starts the moment the last one
    commits; the busy handler still arbitrates between processes. Hold it from a transaction's
    first write to its commit, and start that transaction with the write (no read snapshot
    older than the lock)."""
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _WRITERS.get(bind)
    if lock is None:
        lock = _WRITERS[bind] = asyncio.Lock()
    return lock


async def lock_on_sqlite(session: SAAsyncSession, table: Any, *where: Any) -> None:
    """What ``SELECT ... FOR UPDATE`` promises on PostgreSQL (the rows stay as read until this
    transaction commits), on SQLite; a no-op on PostgreSQL, whose callers lock with the select.

    SQLite has no row locks, and its driver runs reads outside any transaction until the first
    write (that is where it sends ``BEGIN``): what a guard read there could change before the
    write that followed it. A no-op ``UPDATE`` of the rows first takes the database's write
    lock, which every other writer (in this process or another) then waits for, and the reads
    after it see the latest commit."""
    if session.get_bind().dialect.name != "sqlite":
        return
    core = table.__table__  # a Core UPDATE on the connection: the ORM's would sync objects
    connection = await session.connection()
    await connection.execute(update(core).where(*where).values({core.c.id: core.c.id}))


async def lock_rows(session: SAAsyncSession, table: Any, *where: Any) -> None:
    """Holds the rows ``where`` selects against other writers until this transaction commits:
    ``SELECT ... FOR UPDATE`` on PostgreSQL, the database's write lock on SQLite
    (``lock_on_sqlite``; SQLite ignores ``FOR UPDATE``, so it is not sent there)."""
    if session.get_bind().dialect.name == "sqlite":
        await lock_on_sqlite(session, table, *where)
        return
    core = table.__table__
    connection = await session.connection()
    await connection.execute(select(core.c.id).where(*where).with_for_update())


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on any error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# PostgreSQL's "retry me" states: serialization failure, deadlock, lock not available.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}
WRITE_ATTEMPTS = 5  # concurrent writers of one row or key: each conflict lets one more through
# A burst of PUTs of one thing: the last of ten loses nine races, so it gets room for more, and a
# short random pause between tries so the losers do not all come back at the same instant.
PUT_ATTEMPTS = 12

T = TypeVar("T")


def is_write_conflict(err: BaseException) -> bool:
    """A concurrent writer won: a unique key it inserted first, SQLite's lock held past the
    busy timeout ("database is locked"), a PostgreSQL deadlock or serialization failure. Nothing
    of the losing transaction was stored, and doing it again sees the winner's write."""
    if isinstance(err, IntegrityError):
        return True
    if not isinstance(err, OperationalError):
        return False
    orig = getattr(err, "orig", err)
    if getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    text = str(orig).lower()
    return "locked" in text or "deadlock" in text


async def retry_on_conflict(
    session: AsyncSession,
    write: Callable[[], Awaitable[T]],
    *,
    keep: Iterable[object] = (),
    attempts: int = PUT_ATTEMPTS,
) -> T:
    """Runs ``write`` (which reads, then inserts or updates) and flushes it, again after a
    rollback when a concurrent request wins the race: two PUTs of one cadence, queue or
    template at once both succeed instead of one getting a 409. Conflicts surface at the flush
    (a unique key, the write lock), so the caller's commit after this does not meet them.

    A rollback expires every object of the session: those in ``keep`` (the caller's retailer)
    are read again before the retry, as an expired attribute cannot be loaded lazily in an
    async session."""
    for attempt in range(1, attempts + 1):
        try:
            result = await write()
            await session.flush()
            return result
        except (IntegrityError, OperationalError) as err:
            await session.rollback()
            if attempt == attempts or not is_write_conflict(err):
                raise
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))
            for obj in keep:
                await session.refresh(obj)
    raise AssertionError("unreachable")
