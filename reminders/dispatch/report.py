"""What became of each claimed message in a dispatch pass, and the pass's counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Attempt(StrEnum):
    """What became of one claimed message in a pass."""

    SENT = "sent"
    RECONCILED = "reconciled"  # a lost send found at the provider: recorded, not resent
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"  # refused for now; tried again later
    UNSETTLED = "unsettled"  # outcome unknown: left "sending" for reconciliation
    TAKEN_OVER = "taken-over"  # another worker holds the claim now
    CHANNEL_STOPPED = "channel-stopped"  # its channel cannot send until staff fix settings


@dataclass
class PassReport:
    """What one pass did, by outcome."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Attempt) -> None:
        """Count one message's outcome."""
        self.outcomes[outcome] += 1

    @property
    def handled(self) -> int:
        """Messages this pass took a decision on."""
        return sum(self.outcomes.values())
