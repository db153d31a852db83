"""carts: drop the retailer_id indexes the unique (retailer_id, cart_id|event_id) indexes lead with

A redundant index costs every insert, and PostgreSQL, before it had statistics for a growing
table, planned "these carts of this retailer" on it: every row of the retailer, filtered.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:17:52.634263
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cart_retailer_id"))

    with op.batch_alter_table("cartevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cartevent_retailer_id"))


def downgrade() -> None:
    with op.batch_alter_table("cartevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cartevent_retailer_id"), ["retailer_id"], unique=False)

    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cart_retailer_id"), ["retailer_id"], unique=False)
