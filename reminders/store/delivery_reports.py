"""Providers' delivery reports on our messages: how far along a message's life a reported
status is, and recording a report without ever moving a message back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reminders.plans.model import Phase
from reminders.store.message_records import DeliveryUpdate
from reminders.store.schema import Message, MessageStatus

# How far along Twilio's message life a status is; a late callback never moves a message back.
_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}


def report_rank(status: str) -> int:
    """How far along Twilio's message life a reported status is (unknown ones first)."""
    return _STATUS_RANK.get(status, 0)


# Delivery reports that mean the text never reached the phone.
UNDELIVERED_REPORTS = frozenset({"undelivered", "failed"})


def record_delivery_status(
    session: Session,
    provider_message_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
    *,
    undelivered_reason: str | None = None,
) -> DeliveryUpdate | None:
    """Record a provider's delivery status for one of our messages (None if unknown).

    A status older than the one recorded (callbacks may arrive out of order) is ignored.
    With `undelivered_reason`, a sent message whose report says undelivered or failed
    becomes "undelivered" with that reason.
    """
    row = session.execute(
        select(
            Message.id,
            Message.patient_id,
            Message.recipient,
            Message.provider_status,
            Message.error_code,
            Message.status,
            Message.step_id,
            Message.phase,
        ).where(Message.provider_message_id == provider_message_id)
    ).first()
    if row is None:
        return None
    known = _STATUS_RANK.get(row.provider_status or "", -1)
    if report_rank(status) < known:
        return DeliveryUpdate(
            row.id,
            row.patient_id,
            row.recipient,
            row.provider_status,
            row.error_code,
            step_id=row.step_id,
            phase=Phase(row.phase),
        )
    code = error_code or row.error_code
    values: dict[str, Any] = {"provider_status": status, "error_code": code}
    undelivered = (
        undelivered_reason is not None
        and status in UNDELIVERED_REPORTS
        and row.status == MessageStatus.SENT.value
    )
    if undelivered:
        values.update(status=MessageStatus.UNDELIVERED.value, status_reason=undelivered_reason)
    session.execute(update(Message).where(Message.id == row.id).values(**values, updated_at=now))
    new_error = error_code is not None and error_code != row.error_code
    return DeliveryUpdate(
        row.id,
        row.patient_id,
        row.recipient,
        status,
        code,
        new_error,
        row.step_id,
        Phase(row.phase),
        undelivered,
    )
