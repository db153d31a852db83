"""holdout groups: a cart's bucket and group, a secret salt per retailer

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:28:53.445226
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holdout_bucket", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("holdout_group", sa.String(length=10), nullable=True))
        batch_op.create_index(batch_op.f("ix_cart_holdout_group"), ["holdout_group"], unique=False)

    with op.batch_alter_table("retailer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holdout_salt", sa.String(length=64), nullable=True))

    # Existing retailers get their secret salt now, as new ones do when created.
    bind = op.get_bind()
    retailer = sa.table(
        "retailer", sa.column("id", sa.String), sa.column("holdout_salt", sa.String)
    )
    for (retailer_id,) in bind.execute(sa.select(retailer.c.id)).all():
        bind.execute(
            retailer.update()
            .where(retailer.c.id == retailer_id)
            .values(holdout_salt=secrets.token_hex(16))
        )


def downgrade() -> None:
    with op.batch_alter_table("retailer", schema=None) as batch_op:
        batch_op.drop_column("holdout_salt")

    with op.batch_alter_table("cart", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cart_holdout_group"))
        batch_op.drop_column("holdout_group")
        batch_op.drop_column("holdout_bucket")
