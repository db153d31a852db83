"""One module per schema change, oldest first (``alembic history`` shows the order)."""
