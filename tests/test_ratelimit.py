"""The per-channel rate limit spaces sends so a burst never exceeds the provider's rate."""

from __future__ import annotations

from reminders.dispatch.ratelimit import RateLimiter


class FakeClock:
    """A monotonic clock that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=4, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(9):
        limiter.acquire()
        starts.append(clock.now)
    assert starts == [100.0 + 0.25 * i for i in range(9)]
    assert (starts[-1] - starts[0]) / (len(starts) - 1) == 0.25


def test_a_burst_passes_at_once_then_pacing_resumes() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=2, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 10  # idle long enough to have the whole burst available
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == [0.5, 0.5]


def test_no_limit_never_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=None, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(1000)] == [0.0] * 1000
    assert clock.slept == []
