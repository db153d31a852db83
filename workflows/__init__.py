"""Deterministic workflow code: only the standard library, temporalio and our data types."""
