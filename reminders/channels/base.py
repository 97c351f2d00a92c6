"""The seam between the dispatcher and a provider: send one message, or find one already sent."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reminders.plans.model import ContactChannel


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message ready to go; `outbox_id` is our own id, used as an idempotency key."""

    outbox_id: int
    channel: ContactChannel
    to: str  # E.164 phone number or email address
    body: str  # SMS text, or the plain-text part of an email
    subject: str | None = None
    html: str | None = None
    uid: str | None = None  # unique across databases; the same on every attempt


@dataclass(frozen=True)
class DeliveryReceipt:
    """What a provider answered when it accepted a message."""

    provider_message_id: str | None
    provider_status: str = "sent"


class Channel(abc.ABC):
    """Sends messages of one kind. Raises `reminders.errors.DeliveryError` when it cannot."""

    name: str
    # True where a crash between a send and its record costs no second delivery, because
    # `find_sent` finds the message (or nothing is delivered at all): the dispatcher may then
    # record this channel's outcomes in groups. False (SMTP): each send is committed at once.
    group_outcomes: bool = False

    @abc.abstractmethod
    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Hand one message to the provider and return its receipt."""

    def find_sent(self, message: OutgoingMessage, since: datetime) -> DeliveryReceipt | None:
        """Return the receipt of `message` if the provider already has it (sent since `since`).

        Used after a crash left a send's outcome unknown. Channels that cannot look back
        return None, and the dispatcher follows its documented policy instead.
        """
        return None

    def check(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Check the channel's settings and credentials without sending to anyone.

        Raises `DeliveryError` (kind CHANNEL_CONFIGURATION when staff must fix settings).
        """

    def close(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release connections; the default has none."""
