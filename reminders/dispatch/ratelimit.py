"""A per-channel pacing limit, so that a burst never exceeds a provider's messages per second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls at least 1/rate seconds apart on average (a burst of `burst` may pass)."""

    def __init__(
        self,
        per_second: float | None,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._next_free = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's turn; returns how long it waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            earliest = now - self.interval * (self.burst - 1)
            start = max(self._next_free, earliest)
            self._next_free = start + self.interval
            wait = start - now
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0
