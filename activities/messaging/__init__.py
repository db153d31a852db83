"""Sends: cadence steps, the on-site nudge, and notifying a person exactly once."""
