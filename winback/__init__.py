"""Winback core: what the API, the worker and the CLI share."""
