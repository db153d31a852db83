"""A small per-process cache with a time to live, for lookups every request repeats."""

import time
from typing import Generic, TypeVar

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000
V = TypeVar("V")


class TtlCache(Generic[V]):
    """At most ``max_entries`` answers (then it starts over), each for ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: str, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._entries.clear()


__all__ = ["MAX_ENTRIES", "TTL_SECONDS", "TtlCache"]
