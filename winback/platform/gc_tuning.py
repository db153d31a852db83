"""The API process's garbage collector, set for ingestion's many short-lived objects.

A beacon batch of 200 events allocates on the order of 100,000 container objects (rows, dicts,
pydantic models) that all die when the request ends. With CPython's default first-generation
threshold (700 allocations) the collector ran well over a hundred times per batch, each time
promoting what was still alive mid-request into the older generations, whose collections walk
the whole heap (about 250,000 objects of the imported modules). In ``bench.ingestion_cpu`` that
was about a third of a batch's CPU; with a threshold of 10,000 most of those objects are freed
by reference counting before a collection ever sees them. Memory is unaffected (cycles are still
collected, only less often).
"""

import gc

GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Raises the first generation's threshold (the older two keep their defaults)."""
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, gen0), gen1, gen2)
