"""The per-process lookup cache: answers expire, a change clears them, it stays bounded."""

import time

from winback.platform.caching import TtlCache


def test_an_answer_expires_after_its_ttl() -> None:
    cache: TtlCache[str] = TtlCache(ttl=0.05)
    cache.put("k", "v")
    assert cache.get("k") == "v"
    time.sleep(0.06)
    assert cache.get("k") is None


def test_clear_forgets_everything_and_the_size_is_bounded() -> None:
    cache: TtlCache[int] = TtlCache(ttl=60, max_entries=3)
    for i in range(3):
        cache.put(str(i), i)
    cache.put("3", 3)  # full: starts over rather than grow
    assert [cache.get(str(i)) for i in range(4)] == [None, None, None, 3]
    cache.clear()
    assert cache.get("3") is None
