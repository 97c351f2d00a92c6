"""Which row changes bring an enrollment's stored messages to its newly computed schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminders.schedule import PlannedMessage
from reminders.store.records import EnrollmentRequest, ScheduleChange
from reminders.store.schema import MessageStatus

FINAL_FOR_STEP = {MessageStatus.SENT.value}


def _message_values(message: PlannedMessage, now: datetime) -> dict[str, Any]:
    return {
        "step_id": message.step_id,
        "phase": message.phase.value,
        "channel": message.channel,
        "template": message.template,
        "language": message.language,
        "due_at": message.due_at,
        "send_before": message.send_before,
        "next_attempt_at": message.due_at,
        "updated_at": now,
    }


def reconcile(
    request: EnrollmentRequest,
    patient_id: int,
    enrollment_id: int,
    existing: list[Any],
    now: datetime,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    cancels: list[dict[str, Any]],
) -> list[ScheduleChange]:
    """Work out the row changes that bring an enrollment's messages to its new schedule."""
    done = {row.step_id for row in existing if row.status in FINAL_FOR_STEP}
    pending = {row.step_id: row for row in existing if row.status == MessageStatus.PENDING.value}
    latest: dict[str, Any] = {}
    for row in sorted(existing, key=lambda r: r.id):
        latest[row.step_id] = row
    planned = {m.step_id: m for m in request.messages}
    changes: list[ScheduleChange] = []
    in_flight = {row.step_id: row for row in existing if row.status == MessageStatus.SENDING.value}
    for step_id, message in planned.items():
        if step_id in done:
            continue
        if step_id in in_flight:
            changes.append(_retime_in_flight(in_flight[step_id], message, request, now, updates))
            continue
        values = _message_values(message, now)
        values["plan_version"] = request.plan_version
        status = MessageStatus.SKIPPED.value if message.skip_reason else MessageStatus.PENDING.value
        values["status"] = status
        values["status_reason"] = message.skip_reason
        previous = latest.get(step_id)
        row = pending.get(step_id)
        if row is None and previous is not None:
            if previous.status == MessageStatus.CANCELLED.value:
                row = previous  # enrolled again after a cancel: the row comes back
            elif previous.due_at == message.due_at:
                # Skipped or failed at this same time: that outcome stands, once.
                changes.append(ScheduleChange(step_id, "keep", previous.due_at, previous.due_at))
                continue
        if row is None:
            inserts.append(
                {
                    **values,
                    "enrollment_id": enrollment_id,
                    "patient_id": patient_id,
                    "plan_id": request.plan_id,
                    "attempts": 0,
                    "created_at": now,
                }
            )
            changes.append(
                ScheduleChange(step_id, "add", None, message.due_at, message.skip_reason)
            )
            continue
        same = (
            row.due_at == message.due_at
            and row.send_before == message.send_before
            and row.channel == message.channel
            and row.language == message.language
            and row.template == message.template
            and row.plan_version == request.plan_version
            and row.status == status == MessageStatus.PENDING.value
        )
        if same:
            changes.append(ScheduleChange(step_id, "keep", row.due_at, row.due_at))
            continue
        updates.append({**values, "id": row.id, "attempts": 0, "error_code": None})
        action = "restore" if row.status == MessageStatus.CANCELLED.value else "move"
        changes.append(
            ScheduleChange(step_id, action, row.due_at, message.due_at, message.skip_reason)
        )
    for step_id, row in pending.items():
        if step_id not in planned:
            reason = "step no longer applies to this patient"
            cancels.append(
                {
                    "id": row.id,
                    "status": MessageStatus.CANCELLED.value,
                    "status_reason": reason,
                    "updated_at": now,
                }
            )
            changes.append(ScheduleChange(step_id, "cancel", row.due_at, None, reason))
    return changes


def _retime_in_flight(
    row: Any,
    message: PlannedMessage,
    request: EnrollmentRequest,
    now: datetime,
    updates: list[dict[str, Any]],
) -> ScheduleChange:
    """A message a worker holds keeps its claim, but a retry or deferral of it must follow the
    new schedule (a pre-procedure instruction must not outlive a procedure moved earlier)."""
    if row.due_at == message.due_at and row.send_before == message.send_before:
        return ScheduleChange(message.step_id, "keep", row.due_at, row.due_at)
    values = _message_values(message, now)
    del values["next_attempt_at"]
    updates.append({**values, "id": row.id, "plan_version": request.plan_version})
    return ScheduleChange(message.step_id, "move", row.due_at, message.due_at, "being sent now")
