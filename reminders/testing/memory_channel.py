"""A channel that keeps messages in memory and behaves like a provider (for tests)."""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.errors import DeliveryError


class InMemoryChannel(Channel):
    """Accepts messages into a list; can be told to fail the next sends; can look back."""

    group_outcomes = True  # find_sent looks back, so a crash costs a look-up, not a resend

    def __init__(self, name: str = "sms") -> None:
        self.name = name
        self.sent: list[tuple[datetime, OutgoingMessage]] = []
        self.sids: list[str] = []  # the provider id each send answered with, in order
        self._failures: deque[DeliveryError] = deque()
        self._lock = threading.Lock()

    def fail_next(self, error: DeliveryError, times: int = 1) -> None:
        """Make the next `times` sends raise `error`."""
        self._failures.extend([error] * times)

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Record the message, or raise the next scripted failure."""
        with self._lock:
            if self._failures:
                raise self._failures.popleft()
            self.sent.append((datetime.now(UTC), message))
            self.sids.append(f"{self.name}-{message.outbox_id}-{len(self.sent)}")
            return DeliveryReceipt(self.sids[-1], "queued")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> DeliveryReceipt | None:
        """The receipt of an earlier send of the same outbox message, if there was one."""
        with self._lock:
            for sid, (at, earlier) in zip(self.sids, self.sent, strict=True):
                if earlier.outbox_id == message.outbox_id and at >= since:
                    return DeliveryReceipt(sid, "queued")
        return None

    def sid_to(self, address: str) -> str:
        """The provider id of the first message sent to one address."""
        sent = zip(self.sids, self.sent, strict=True)
        return next(sid for sid, (_, message) in sent if message.to == address)

    def bodies_to(self, address: str) -> list[str]:
        """The texts sent to one address, in order."""
        return [m.body for _, m in self.sent if m.to == address]
