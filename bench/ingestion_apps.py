"""The two ASGI apps ``bench/ingestion.py`` puts under load, as uvicorn factories.

- ``winback``: the real app (``create_app``), configured from the environment like
  ``winback api`` (``WINBACK_DATABASE_URL``, ``WINBACK_TEMPORAL_ADDRESS``...).
- ``bare``: the baseline the issue names, "FastAPI + one SQLModel insert": the same body model
  as our event route, validated by FastAPI, one row inserted through a SQLModel session on the
  same kind of engine (``make_engine``: the same SQLite pragmas, the same PostgreSQL pool), a
  commit, a 202. No auth, no dedupe, no cart, no Temporal.

    uvicorn --factory bench.ingestion_apps:winback --workers 2 --port 8001
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, status
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from winback.carts.events import CartEventIn
from winback.platform.clock import utcnow
from winback.platform.db import make_engine, make_session_factory
from winback.platform.settings import get_settings


class BareEvent(SQLModel, table=True):
    __tablename__ = "bench_bare_event"

    id: int | None = Field(default=None, primary_key=True)
    cart_id: str = Field(max_length=128)
    event_id: str = Field(max_length=200)
    received_at: datetime
    payload: dict[str, Any] = Field(sa_column=Column(JSON))


def winback() -> FastAPI:
    from api.main import create_app

    return create_app(get_settings())


def bare() -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.sessions = make_session_factory(engine)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare/carts/{cart_id}/events", status_code=status.HTTP_202_ACCEPTED)
    async def post(cart_id: str, event: CartEventIn) -> dict[str, str]:
        async with app.state.sessions() as session:
            session.add(
                BareEvent(
                    cart_id=cart_id,
                    event_id=event.event_id,
                    received_at=utcnow(),
                    payload=event.model_dump(mode="json", exclude_none=True),
                )
            )
            await session.commit()
        return {"cart_id": cart_id}

    return app


def create_bare_table(url: str) -> None:
    """The baseline's one table, beside ours in the same database (sync: run before serving)."""
    from sqlalchemy import create_engine

    sync_url = url.replace("+aiosqlite", "")
    engine = create_engine(sync_url)
    BareEvent.metadata.create_all(engine, tables=[BareEvent.__table__])  # type: ignore[list-item]
    engine.dispose()
