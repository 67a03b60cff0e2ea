"""Process set-up of the processes that fold events (the consumer, the replay command)."""

from __future__ import annotations

import gc

# Allocations between two young-generation collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect less often, and never rescan what exists at start-up.

    A batch creates and drops hundreds of thousands of small objects (decoded
    events, states, deltas, ops). With CPython's defaults the collector runs
    every 700 allocations and its older generations rescan the whole
    long-lived heap (modules, settings, caches): a quarter of the consumer's
    CPU in the ingest benchmark. Freezing the start-up heap takes it out of
    every later collection; reference cycles are still collected, only later.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)
