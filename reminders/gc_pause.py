"""Collecting cyclic garbage less often while bulk work runs (a CSV import): one setting of the
process's collector, shared by every bulk job running at once."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_GC_THRESHOLD = 100_000
"""Young objects between garbage collections while bulk work runs (Python's default: 700)."""
_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while a bulk import runs.

    An import's objects (a batch's rows, inputs, schedules, outcomes) live until their batch
    is stored, so with the default threshold every young collection walks them and hands them
    on to the older generations, whose full collections walk the whole heap: a quarter of a
    10,000-patient import's CPU. Raised, a collection comes about once per 100,000 objects
    kept; garbage held up meanwhile is bounded by that. Imports running at once share one
    setting: the first saves the process's thresholds, the last restores them (a collector
    switched off by threshold 0 is left off).
    """
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            if _saved[0] != 0:
                gc.set_threshold(max(_saved[0], BULK_GC_THRESHOLD), *_saved[1:])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)
