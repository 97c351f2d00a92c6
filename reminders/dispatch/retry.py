"""When to try a failed send again: exponential backoff with a cap, inside the send window."""

from __future__ import annotations

from datetime import datetime, timedelta


def retry_at(
    now: datetime, attempts: int, base_seconds: float, cap_seconds: float = 3600.0
) -> datetime:
    """The instant of the next try after `attempts` failed tries."""
    delay = min(cap_seconds, base_seconds * (2 ** max(0, attempts - 1)))
    return now + timedelta(seconds=delay)
