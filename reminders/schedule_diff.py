"""The enrollment diff: stored messages + a newly computed schedule -> the changes between them.

Pure, like `reminders.schedule`: values in, values out. The store reads an enrollment's rows,
asks `diff_schedule` what to do and applies the answer in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reminders.plans.model import ContactChannel
from reminders.schedule import PlannedMessage

NO_LONGER_APPLIES = "step no longer applies to this patient"
BEING_SENT = "being sent now"


class MessageStatus(StrEnum):
    """Life of an outbox row."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UNDELIVERED = "undelivered"  # the provider took it, the carrier could not deliver it


class ChangeAction(StrEnum):
    """What enrolling did to one step's message."""

    ADD = "add"
    MOVE = "move"
    RESTORE = "restore"  # back from cancelled
    KEEP = "keep"
    CANCEL = "cancel"
    SKIP = "skip"  # recorded as skipped at once, with the reason (already past, no channel, ...)


# Reasons a message was held back only because SMS to the patient had stopped (an opt-out, no
# consent at the time, a number the provider refused): opting in, or a new number, brings such
# a message back while its window is open.
SMS_STOPPED_REASONS = (
    "opted out of SMS",
    "patient opted out of SMS",
    "no SMS consent",
    "no valid phone number",
)

# Statuses after which a step is history: planning never sends it again.
FINAL_FOR_STEP = frozenset({MessageStatus.SENT, MessageStatus.UNDELIVERED})


@dataclass(frozen=True)
class StoredMessage:
    """What the diff needs to know about one existing outbox row."""

    id: int
    step_id: str
    status: MessageStatus
    due_at: datetime
    send_before: datetime
    channel: ContactChannel
    language: str
    template: str
    plan_version: int
    status_reason: str | None = None


@dataclass(frozen=True)
class ScheduleChange:
    """What enrolling did to one step's pending message."""

    step_id: str
    action: ChangeAction
    old_due_at: datetime | None
    new_due_at: datetime | None
    reason: str | None = None

    @property
    def changed(self) -> bool:
        """Whether enrolling did anything to the step's message (anything but keep it)."""
        return self.action is not ChangeAction.KEEP

    @property
    def plans_a_send(self) -> bool:
        """Whether the step's message is now pending to go out (added, moved or restored)."""
        return self.action in (ChangeAction.ADD, ChangeAction.MOVE, ChangeAction.RESTORE)


@dataclass(frozen=True)
class Replan:
    """Bring a pending (or cancelled) row to a planned message: new times, status, no attempts."""

    row_id: int
    message: PlannedMessage


@dataclass(frozen=True)
class Retime:
    """A row a worker holds keeps its claim; only its schedule follows the plan."""

    row_id: int
    message: PlannedMessage


@dataclass(frozen=True)
class Cancel:
    """A pending row whose step the plan no longer has."""

    row_id: int
    reason: str


@dataclass(frozen=True)
class ScheduleDiff:
    """The row changes for one enrollment, and what each step saw."""

    inserts: list[PlannedMessage] = field(default_factory=list)
    replans: list[Replan] = field(default_factory=list)
    retimes: list[Retime] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)
    changes: list[ScheduleChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when applying it would change no row."""
        return not (self.inserts or self.replans or self.retimes or self.cancels)


def planned_status(message: PlannedMessage) -> MessageStatus:
    """The status a planned message is stored with."""
    return MessageStatus.SKIPPED if message.skip_reason else MessageStatus.PENDING


def diff_schedule(
    existing: Sequence[StoredMessage],
    planned: Sequence[PlannedMessage],
    plan_version: int,
    *,
    opting_in: bool = False,
    keep_cancelled: bool = False,
) -> ScheduleDiff:
    """The changes that bring an enrollment's rows (`existing`) to its schedule (`planned`).

    A sent step is never planned again; a pending row moves to its new time; a cancelled one
    comes back; a skip or failure at the same time stands, once; a pending row whose step is
    gone is cancelled; a row being sent keeps its claim and only follows the new times.
    `opting_in` (the patient may be texted again): what SMS stopping held back comes back,
    but what staff cancelled stays cancelled and a step moved to another channel stays there.
    `keep_cancelled` (a re-plan that books nothing: details edited, a plan re-applied): what
    staff or a feed cancelled stays cancelled, and only booking the procedure again brings it
    back; a row cancelled because its step no longer applied comes back when it applies again.
    """
    diff = ScheduleDiff()
    rows = sorted(existing, key=lambda r: r.id)
    done = {row.step_id for row in rows if row.status in FINAL_FOR_STEP}
    pending = {row.step_id: row for row in rows if row.status == MessageStatus.PENDING}
    in_flight = {row.step_id: row for row in rows if row.status == MessageStatus.SENDING}
    latest = {row.step_id: row for row in rows}
    wanted = {m.step_id: m for m in planned}
    for step_id, message in wanted.items():
        if step_id in done:
            continue
        if step_id in in_flight:
            diff.changes.append(_retime(in_flight[step_id], message, diff))
            continue
        status = planned_status(message)
        previous = latest.get(step_id)
        row = pending.get(step_id)
        if opting_in and _kept_on_opt_in(row or previous, message):
            assert previous is not None
            diff.changes.append(
                ScheduleChange(step_id, ChangeAction.KEEP, previous.due_at, previous.due_at)
            )
            continue
        if row is None and previous is not None:
            if (
                keep_cancelled
                and previous.status == MessageStatus.CANCELLED
                and previous.status_reason != NO_LONGER_APPLIES
            ):
                diff.changes.append(
                    ScheduleChange(step_id, ChangeAction.KEEP, previous.due_at, previous.due_at)
                )
                continue
            if previous.status == MessageStatus.CANCELLED:
                row = previous  # enrolled again after a cancel: the row comes back
            elif _sms_stopped(previous) and (
                status == MessageStatus.PENDING or previous.due_at != message.due_at
            ):
                # Opted back in: what the opt-out held back comes back. Moved while SMS stays
                # stopped: the same row follows the new time (one row per step).
                row = previous
            elif previous.due_at == message.due_at:
                # Skipped or failed at this same time: that outcome stands, once.
                diff.changes.append(
                    ScheduleChange(step_id, ChangeAction.KEEP, previous.due_at, previous.due_at)
                )
                continue
        if row is None:
            diff.inserts.append(message)
            diff.changes.append(
                ScheduleChange(
                    step_id,
                    ChangeAction.SKIP if message.skip_reason else ChangeAction.ADD,
                    None,
                    message.due_at,
                    message.skip_reason,
                )
            )
            continue
        if _unchanged(row, message, plan_version, status):
            diff.changes.append(ScheduleChange(step_id, ChangeAction.KEEP, row.due_at, row.due_at))
            continue
        diff.replans.append(Replan(row.id, message))
        if status == MessageStatus.SKIPPED:
            action = ChangeAction.SKIP
        elif row.status in (MessageStatus.CANCELLED, MessageStatus.SKIPPED):
            action = ChangeAction.RESTORE
        else:
            action = ChangeAction.MOVE
        diff.changes.append(
            ScheduleChange(step_id, action, row.due_at, message.due_at, message.skip_reason)
        )
    for step_id, row in pending.items():
        if step_id not in wanted:
            diff.cancels.append(Cancel(row.id, NO_LONGER_APPLIES))
            diff.changes.append(
                ScheduleChange(step_id, ChangeAction.CANCEL, row.due_at, None, NO_LONGER_APPLIES)
            )
    return diff


def _kept_on_opt_in(row: StoredMessage | None, message: PlannedMessage) -> bool:
    """Opting in leaves alone a step staff cancelled and one that goes by another channel."""
    if row is None:
        return False
    if row.status == MessageStatus.CANCELLED:
        return not _sms_stopped(row)
    return row.status == MessageStatus.PENDING and row.channel != message.channel


def _sms_stopped(row: StoredMessage) -> bool:
    """Held back (skipped or cancelled) only because SMS to the patient had stopped."""
    return row.status in (MessageStatus.SKIPPED, MessageStatus.CANCELLED) and (
        row.status_reason or ""
    ).startswith(SMS_STOPPED_REASONS)


def _unchanged(
    row: StoredMessage, message: PlannedMessage, plan_version: int, status: MessageStatus
) -> bool:
    return (
        row.due_at == message.due_at
        and row.send_before == message.send_before
        and row.channel == message.channel
        and row.language == message.language
        and row.template == message.template
        and row.plan_version == plan_version
        and row.status == status == MessageStatus.PENDING
    )


def _retime(row: StoredMessage, message: PlannedMessage, diff: ScheduleDiff) -> ScheduleChange:
    """A message a worker holds keeps its claim, but a retry or deferral of it must follow the
    new schedule (a pre-procedure instruction must not outlive a procedure moved earlier)."""
    if row.due_at == message.due_at and row.send_before == message.send_before:
        return ScheduleChange(message.step_id, ChangeAction.KEEP, row.due_at, row.due_at)
    diff.retimes.append(Retime(row.id, message))
    return ScheduleChange(
        message.step_id, ChangeAction.MOVE, row.due_at, message.due_at, BEING_SENT
    )
