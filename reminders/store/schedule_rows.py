"""The row values that apply a `ScheduleDiff` to the messages table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reminders.schedule import PlannedMessage
from reminders.schedule_diff import MessageStatus, ScheduleDiff, planned_status
from reminders.store.records import EnrollmentRequest
from reminders.store.schema import random_uids

UID_BLOCK = 256  # message uids drawn at once (random_uids): cheap per uid, quick for one


def _uids() -> Iterator[str]:
    while True:
        yield from random_uids(UID_BLOCK)


@dataclass
class RowChanges:
    """Inserts and updates for many enrollments, run as a few batched statements."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    uids: Iterator[str] = field(default_factory=_uids, repr=False)

    def add(
        self,
        diff: ScheduleDiff,
        request: EnrollmentRequest,
        patient_id: int,
        enrollment_id: int,
        now: datetime,
    ) -> None:
        """The rows of one enrollment's diff."""
        for message in diff.inserts:
            row = _planned_values(message, request.plan_version, now)
            row["uid"] = next(self.uids)
            row["enrollment_id"] = enrollment_id
            row["patient_id"] = patient_id
            row["plan_id"] = request.plan_id
            row["attempts"] = 0
            row["created_at"] = now
            self.inserts.append(row)
        for replan in diff.replans:
            values = _planned_values(replan.message, request.plan_version, now)
            self.updates.append({**values, "id": replan.row_id, "attempts": 0, "error_code": None})
        for retime in diff.retimes:
            values = _message_values(retime.message, now)
            del values["next_attempt_at"]
            self.updates.append(
                {**values, "id": retime.row_id, "plan_version": request.plan_version}
            )
        for cancel in diff.cancels:
            self.cancels.append(
                {
                    "id": cancel.row_id,
                    "status": MessageStatus.CANCELLED.value,
                    "status_reason": cancel.reason,
                    "updated_at": now,
                }
            )


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


def _planned_values(message: PlannedMessage, plan_version: int, now: datetime) -> dict[str, Any]:
    values = _message_values(message, now)
    values["plan_version"] = plan_version
    values["status"] = planned_status(message).value
    values["status_reason"] = message.skip_reason
    return values
