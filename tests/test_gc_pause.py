"""Bulk work collects garbage less often, and the process's setting comes back afterwards."""

from __future__ import annotations

import gc

import pytest

from reminders.gc_pause import BULK_GC_THRESHOLD, fewer_collections


def test_bulk_work_raises_the_threshold_and_puts_it_back_even_when_it_fails(
    gc_threshold: tuple[int, int, int],
) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == (max(gc_threshold[0], BULK_GC_THRESHOLD), *gc_threshold[1:])
        raise RuntimeError

    assert gc.get_threshold() == gc_threshold


def test_imports_at_once_share_the_setting_and_the_last_one_out_restores_it(
    gc_threshold: tuple[int, int, int],
) -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)

    assert gc.get_threshold()[0] == max(gc_threshold[0], BULK_GC_THRESHOLD)
    second.__exit__(None, None, None)
    assert gc.get_threshold() == gc_threshold


def test_a_collector_switched_off_by_its_threshold_stays_off(
    gc_threshold: tuple[int, int, int],
) -> None:
    gc.set_threshold(0, *gc_threshold[1:])

    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, *gc_threshold[1:])
