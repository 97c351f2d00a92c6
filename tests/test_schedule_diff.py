"""The enrollment diff (stored rows + planned messages -> changes), property by property.

`apply` below plays the store's part on values; the last test checks that the real store,
on SQLite, ends with exactly the rows `apply` predicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from reminders.plans.model import Phase
from reminders.schedule import PlannedMessage
from reminders.schedule_diff import (
    NO_LONGER_APPLIES,
    SMS_STOPPED_REASONS,
    MessageStatus,
    ScheduleDiff,
    StoredMessage,
    diff_schedule,
    planned_status,
)
from reminders.store.patients import STORED_MESSAGE_COLUMNS
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.schema import Message
from reminders.store.storage import Storage

BASE = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STEPS = ("welcome", "prepare", "check-in", "relief-check-week-4")
FINAL = (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.SKIPPED, MessageStatus.CANCELLED)
LIVE = (MessageStatus.PENDING, MessageStatus.SENDING)

due_times = st.sampled_from([BASE + timedelta(hours=h) for h in (0, 3, 24)])


@st.composite
def planned_messages(draw: st.DrawFn) -> list[PlannedMessage]:
    """A schedule: some of the steps, each at one of a few times, some skipped by the plan."""
    messages = []
    for step_id in draw(st.lists(st.sampled_from(STEPS), unique=True)):
        due = draw(due_times)
        messages.append(
            PlannedMessage(
                step_id=step_id,
                phase=Phase.RECOVERY,
                channel=draw(st.sampled_from(["sms", "email"])),
                template=step_id,
                language="en",
                due_at=due,
                send_before=due + timedelta(hours=draw(st.sampled_from([2, 12]))),
                local_due=due,
                skip_reason=draw(st.sampled_from([None, None, "no phone number"])),
            )
        )
    return messages


def final_reasons(status: MessageStatus, n: int) -> st.SearchStrategy[str]:
    """A final row's reason: its own, or (skipped) one of SMS having stopped."""
    own = st.just(f"{status.value} {n}")
    if status != MessageStatus.SKIPPED:
        return own
    stopped = st.sampled_from(
        ["opted out of SMS by text on 2026-01-01 (STOP)", "no valid phone number since 2026-01-01"]
    )
    return st.one_of(own, stopped)


@st.composite
def stored_rows(draw: st.DrawFn) -> list[StoredMessage]:
    """Rows as the store can hold them: per step, earlier outcomes, then at most one live row."""
    rows: list[StoredMessage] = []
    for step_id in STEPS:
        statuses = draw(st.lists(st.sampled_from(FINAL), max_size=2))
        if MessageStatus.SENT in statuses:  # a sent step is never planned again
            statuses = [*statuses[: statuses.index(MessageStatus.SENT)], MessageStatus.SENT]
        elif draw(st.booleans()):
            statuses.append(draw(st.sampled_from(LIVE)))
        for status in statuses:
            due = draw(due_times)
            rows.append(
                StoredMessage(
                    id=len(rows) + 1,
                    step_id=step_id,
                    status=status,
                    due_at=due,
                    send_before=due + timedelta(hours=12),
                    channel=draw(st.sampled_from(["sms", "email"])),
                    language="en",
                    template=step_id,
                    plan_version=draw(st.sampled_from([1, 2])),
                    status_reason=None
                    if status in LIVE
                    else draw(final_reasons(status, len(rows))),
                )
            )
    return rows


versions = st.sampled_from([1, 2])


def apply(
    rows: Sequence[StoredMessage], diff: ScheduleDiff, plan_version: int
) -> list[StoredMessage]:
    """What the store does with a diff, on values."""
    by_id = {row.id: row for row in rows}
    for replan in diff.replans:
        m = replan.message
        by_id[replan.row_id] = dataclasses.replace(
            by_id[replan.row_id],
            **_times(m),
            status=planned_status(m),
            status_reason=m.skip_reason,
            plan_version=plan_version,
        )
    for retime in diff.retimes:
        row = by_id[retime.row_id]
        by_id[retime.row_id] = dataclasses.replace(
            row, **_times(retime.message), plan_version=plan_version
        )
    for cancel in diff.cancels:
        by_id[cancel.row_id] = dataclasses.replace(
            by_id[cancel.row_id], status=MessageStatus.CANCELLED, status_reason=cancel.reason
        )
    next_id = max(by_id, default=0) + 1
    for offset, m in enumerate(diff.inserts):
        by_id[next_id + offset] = StoredMessage(
            id=next_id + offset,
            step_id=m.step_id,
            status=planned_status(m),
            plan_version=plan_version,
            status_reason=m.skip_reason,
            **_times(m),
        )
    return sorted(by_id.values(), key=lambda row: row.id)


def _times(m: PlannedMessage) -> dict[str, object]:
    return {
        "due_at": m.due_at,
        "send_before": m.send_before,
        "channel": m.channel,
        "language": m.language,
        "template": m.template,
    }


@given(stored_rows(), planned_messages(), versions)
def test_a_sent_message_is_never_changed(
    rows: list[StoredMessage], planned: list[PlannedMessage], version: int
) -> None:
    diff = diff_schedule(rows, planned, version)

    sent = {row.id: row for row in rows if row.status == MessageStatus.SENT}
    touched = {c.row_id for c in [*diff.replans, *diff.retimes, *diff.cancels]}
    assert not touched & set(sent)
    after = {row.id: row for row in apply(rows, diff, version)}
    assert all(after[row_id] == row for row_id, row in sent.items())
    assert not {m.step_id for m in diff.inserts} & {row.step_id for row in sent.values()}


@given(stored_rows(), planned_messages(), versions)
def test_applying_the_changes_twice_changes_nothing_the_second_time(
    rows: list[StoredMessage], planned: list[PlannedMessage], version: int
) -> None:
    once = apply(rows, diff_schedule(rows, planned, version), version)

    again = diff_schedule(once, planned, version)

    assert again.empty
    assert {c.action for c in again.changes} <= {"keep"}


@given(stored_rows(), planned_messages(), versions)
def test_every_planned_step_ends_with_exactly_one_row(
    rows: list[StoredMessage], planned: list[PlannedMessage], version: int
) -> None:
    diff = diff_schedule(rows, planned, version)
    after = apply(rows, diff, version)

    for message in planned:
        steps_rows = [row for row in after if row.step_id == message.step_id]
        standing = [row for row in steps_rows if row.status in {*LIVE, MessageStatus.SENT}]
        if standing:
            assert len(standing) == 1
        else:  # a skip or failure at the planned time stands as the step's one row
            latest = steps_rows[-1]
            assert latest.status in {MessageStatus.SKIPPED, MessageStatus.FAILED}
            assert latest.due_at == message.due_at
    done = {row.step_id for row in rows if row.status == MessageStatus.SENT}
    changed_steps = [c.step_id for c in diff.changes if c.action != "cancel"]
    assert sorted(changed_steps) == sorted(m.step_id for m in planned if m.step_id not in done)


@given(stored_rows(), planned_messages(), versions)
def test_reasons_of_skipped_and_cancelled_rows_survive_a_replan(
    rows: list[StoredMessage], planned: list[PlannedMessage], version: int
) -> None:
    diff = diff_schedule(rows, planned, version)
    after = {row.id: row for row in apply(rows, diff, version)}

    restored = {r.row_id for r in diff.replans}
    reported = {c.step_id for c in diff.changes if c.action in ("restore", "skip")}
    for row in rows:
        if row.status == MessageStatus.SKIPPED and row.id in restored:
            # Only what an opt-out held back comes back (issue 10, item 4).
            assert (row.status_reason or "").startswith(SMS_STOPPED_REASONS)
        if row.status in (MessageStatus.SKIPPED, MessageStatus.CANCELLED):
            if row.id in restored:
                assert row.step_id in reported
            else:
                assert after[row.id].status_reason == row.status_reason
    planned_steps = {m.step_id for m in planned}
    for row in rows:
        if row.status == MessageStatus.PENDING and row.step_id not in planned_steps:
            assert after[row.id].status == MessageStatus.CANCELLED
            assert after[row.id].status_reason == NO_LONGER_APPLIES


# -- the store applies exactly the diff ------------------------------------------------------

NOW = BASE - timedelta(days=10)
PATIENT = PatientRecord("P-1", "Ana", "UTC", "en", "sms", "+12025550143")


def _request(planned: list[PlannedMessage], version: int) -> EnrollmentRequest:
    return EnrollmentRequest(PATIENT, "knee", version, date(2026, 3, 1), None, planned)


def test_the_store_reads_every_field_of_a_stored_message_in_order() -> None:
    columns = [column.key for column in STORED_MESSAGE_COLUMNS]

    assert columns == [field.name for field in dataclasses.fields(StoredMessage)]


def _stored(storage: Storage) -> list[StoredMessage]:
    query = select(*STORED_MESSAGE_COLUMNS).order_by(Message.id)
    with storage.database.session() as session:
        return [StoredMessage(*row) for row in session.execute(query)]


@pytest.mark.slow  # 25 examples, each against a real database
@settings(max_examples=25, deadline=None)
@given(
    planned_messages(),
    st.lists(st.sampled_from([s.value for s in MessageStatus]), min_size=4, max_size=4),
    planned_messages(),
    versions,
)
def test_the_store_ends_with_the_rows_the_diff_predicts(
    first: list[PlannedMessage], outcomes: list[str], second: list[PlannedMessage], version: int
) -> None:
    storage = Storage.open("sqlite://")
    try:
        storage.patients.enroll_many([_request(first, 1)], NOW)
        with storage.database.session() as session:  # what dispatch made of the first plan
            for row, status in zip(_stored(storage), outcomes, strict=False):
                session.execute(update(Message).where(Message.id == row.id).values(status=status))
        before = _stored(storage)
        diff = diff_schedule(before, second, version)

        (outcome,) = storage.patients.enroll_many([_request(second, version)], NOW)

        assert outcome.changes == diff.changes
        assert _stored(storage) == apply(before, diff, version)
    finally:
        storage.close()
