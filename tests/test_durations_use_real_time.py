"""`pytest --durations` measures real seconds even while a fixture holds the clock frozen."""

from __future__ import annotations

import time
from collections.abc import Iterator

import _pytest.timing
import pytest
from freezegun import freeze_time


@pytest.fixture
def frozen_in_2000() -> Iterator[None]:
    with freeze_time("2000-01-01T00:00:00Z"):
        yield


def test_pytests_clock_is_not_the_frozen_one(frozen_in_2000: None) -> None:
    assert time.time() == 946_684_800  # frozen for the code under test
    assert _pytest.timing.time() > 1_700_000_000  # pytest's own clock reads the real time
    started = _pytest.timing.perf_counter()
    assert 0 <= _pytest.timing.perf_counter() - started < 60
