"""cart events stored by the beacon batch on SQLite: times in the form the ORM stores them

The batch wrote its events' times as ISO text with a "T" ("2026-12-02T01:47:00.5") where every
other row has "2026-12-02 01:47:00.5". SQLite compares and sorts times as text, so those rows
sorted apart (the latest event of a cart, the sweep's grace after it). PostgreSQL stores a
timestamp either way: nothing to do there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:05:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for column in ("occurred_at", "received_at"):
        op.execute(
            f"UPDATE cartevent SET {column} = replace({column}, 'T', ' ') "
            f"WHERE {column} LIKE '____-__-__T%'"
        )


def downgrade() -> None:
    """Nothing to undo: the "T" form was the fault."""
