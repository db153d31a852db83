"""Alembic migrations of the app database (a package so that the installed app ships them)."""
