"""Message records that cross the store's boundary (outbox, staff views): plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from reminders.plans.model import Phase
from reminders.schedule_diff import MessageStatus
from reminders.store.records import ContactChannel, EnrollmentStatus


@dataclass(frozen=True)
class MessageView:
    """A message as staff see it in timelines and lists."""

    id: int
    external_id: str
    plan_id: str
    step_id: str
    phase: Phase
    channel: ContactChannel
    status: MessageStatus
    status_reason: str | None
    due_at: datetime
    send_before: datetime
    next_attempt_at: datetime
    attempts: int
    sent_at: datetime | None
    provider_message_id: str | None
    provider_status: str | None
    error_code: str | None
    timezone: str
    body: str | None
    updated_at: datetime

    @property
    def cursor(self) -> MessageCursor:
        """Where a list of messages continues after this one."""
        return MessageCursor(self.updated_at, self.id)


@dataclass(frozen=True)
class MessageCursor:
    """A place in the messages list (newest activity first): continue before this row.

    Written as `<updated_at in UTC, ISO 8601>~<id>` for staff and API clients.
    """

    updated_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{self.updated_at.astimezone(UTC).isoformat()}~{self.id}"

    @classmethod
    def parse(cls, text: str) -> MessageCursor:
        """Read a cursor written by `str()`; a ValueError says what is wrong."""
        instant, sep, number = text.strip().rpartition("~")
        try:
            if not sep:
                raise ValueError
            updated_at = datetime.fromisoformat(instant)
            message_id = int(number)
        except ValueError:
            raise ValueError(
                f"not a messages cursor: {text!r} (expected '<UTC time>~<id>' as printed "
                "with the previous page)"
            ) from None
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=UTC)
        return cls(updated_at, message_id)


@dataclass(frozen=True)
class ClaimedMessage:
    """A due message claimed by one worker, with everything needed to render and send it."""

    id: int
    enrollment_id: int
    patient_id: int
    plan_id: str
    plan_version: int
    step_id: str
    phase: Phase
    channel: ContactChannel
    template: str
    language: str
    due_at: datetime
    send_before: datetime
    attempts: int
    claimed_at: datetime
    first_name: str
    phone: str | None
    email: str | None
    timezone: str
    attributes: dict[str, Any]
    sms_consent: bool
    sms_opted_out_at: datetime | None
    phone_invalid_at: datetime | None
    procedure_date: date
    procedure_time: time | None
    enrollment_status: EnrollmentStatus
    uid: str | None = None


@dataclass(frozen=True)
class ClaimedBatch:
    """Messages one worker claimed, with when their patients were last texted (SMS sent, or
    held in "sending" by another claim), read in the same transaction as the claim."""

    messages: list[ClaimedMessage]
    sms_sent_at: dict[int, list[datetime]]


@dataclass(frozen=True)
class DeliveryUpdate:
    """The message a status callback was about; `new_error` when this callback first recorded
    its error code (a repeated or stale callback must not act twice)."""

    message_id: int
    patient_id: int
    recipient: str | None
    provider_status: str | None
    error_code: str | None
    new_error: bool = False
    step_id: str | None = None
    phase: Phase | None = None
    undelivered: bool = False  # this report moved the message from sent to undelivered
