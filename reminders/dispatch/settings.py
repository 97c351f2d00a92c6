"""The dispatcher's knobs (batch size, retries, claim timeout, grouping, rates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from reminders.templating.context import Clinic


@dataclass(frozen=True)
class DispatchSettings:
    """Knobs of the dispatcher, usually taken from `reminders.settings.Settings`."""

    clinic: Clinic
    batch_size: int = 200
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    claim_timeout: timedelta = timedelta(minutes=2)
    group_outcomes_for: timedelta = timedelta(milliseconds=100)
    per_second: dict[str, float] = field(default_factory=dict)
    # A message that waited this long in its batch is read again before it is acted on.
    reread_after: timedelta = timedelta(seconds=1)
