"""Helpers the tests share: API clients, agents, payloads."""
