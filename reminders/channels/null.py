"""A channel that accepts every message and only counts them, for benchmarks."""

from __future__ import annotations

import threading

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage


class NullChannel(Channel):
    """Accepts everything, sends nothing; `sent` counts the messages it was given."""

    group_outcomes = True  # nothing is delivered, so a second send harms no one

    def __init__(self, channel_name: str = "null") -> None:
        self.name = channel_name
        self.sent = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        """One line for the startup banner."""
        return "null (discards messages)"

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Count the message and return a receipt for it."""
        with self._lock:
            self.sent += 1
        return DeliveryReceipt(provider_message_id=f"null-{message.outbox_id}")
