"""Writing a task's final state, as its workflow decided it, into the task's inbox row.

The workflow is the source of truth and bumps a task's ``version`` on every accepted change; the
row follows in order. Its final state arrives from the workflow's own activity (``close_task``,
or a cart's ``record_call``), which may run before or after the API has mirrored the same
change: the write is conditional, so an older state never overwrites a newer one.
"""

from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.tasks.models import HumanTask
from workflows.tasks.types import TaskChange


async def close_row(session: AsyncSession, change: TaskChange) -> bool:
    """Writes the task's final state (done or cancelled) unless the row shows a newer version.
    One Core statement, so it can be the first of a write transaction (``sqlite_writer``). True
    if the row was written; False if it shows a newer version or does not exist."""
    values: dict[str, Any] = {
        "status": change.status,
        "claimed_by": change.claimed_by,
        "version": change.version,
        "outcome": change.outcome,
        "completed_at": change.at,
    }
    if change.notes:
        values["notes"] = change.notes
    statement = (
        update(HumanTask)
        .where(col(HumanTask.id) == change.task_id, col(HumanTask.version) <= change.version)
        .values(**values)
    )
    result = await (await session.connection()).execute(statement)
    return result.rowcount == 1
