"""Claiming due messages for one worker: every due message of a patient together, with those
patients' SMS history read in the same transaction. The statements are built once for each way
of binding lists of ids."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, String, bindparam, func, select, update

from reminders.store.database import chunks, one_of
from reminders.store.message_records import ClaimedBatch
from reminders.store.outcome_writer import MESSAGES
from reminders.store.queries import claimed, claimed_query
from reminders.store.schema import Message, MessageStatus, Patient


def claim_batch(
    connection: Connection, now: datetime, worker: str, limit: int, *, arrays: bool
) -> ClaimedBatch:
    """Take due messages for one worker, every due message of a patient together, with the SMS
    history of those patients read in the same transaction; in claim order (`next_attempt_at`,
    then id). `arrays`: whether the database binds lists of ids as arrays (see `one_of`).

    Caps hold with any number of workers: a patient is claimed by one worker at a time (on
    PostgreSQL the patient rows are locked FOR UPDATE SKIP LOCKED; on SQLite the write lock
    taken at BEGIN IMMEDIATE serialises claims), and the history counts SMS sent and SMS
    another worker holds in "sending" (outcome not known yet) alike.
    """
    statements = _claim_statements(arrays)
    # Locked while read: a patient another worker is claiming is passed over, and the
    # scan goes on to the next due patients (two workers share a wave). The message row
    # is locked too, so that one another worker claimed after this scan began is read
    # again and passed over as no longer pending; with the patient alone, this worker
    # locked patients whose messages were gone, claimed nothing and ended its pass.
    due = connection.scalars(statements.due, {"now": now, "limit": limit})
    patients = list(dict.fromkeys(due))
    if not patients:
        return ClaimedBatch([], {})
    taken = connection.execute(
        statements.claim, {"patients": patients, "now": now, "worker": worker}
    ).all()
    if not taken:
        return ClaimedBatch([], {})
    ids = [row.id for row in sorted(taken, key=lambda row: (row.next_attempt_at, row.id))]
    # The patients' ids too: each table is read by its key for this batch, never
    # scanned whole (a hash join over every patient cost 5 ms a batch at 20,000).
    rows = connection.execute(statements.claimed, {"ids": ids, "patients": patients})
    order = {message_id: place for place, message_id in enumerate(ids)}
    messages = sorted((claimed(row) for row in rows), key=lambda m: order[m.id])
    texted = [m.patient_id for m in messages if m.channel == "sms"]
    history = sms_sent_at(connection, texted, excluding=ids)
    return ClaimedBatch(messages, history)


@dataclass(frozen=True)
class _ClaimStatements:
    """The claim's statements, built once for a way of binding lists of ids (`one_of`)."""

    due: Any
    claim: Any
    claimed: Any
    history: Any


@functools.cache
def _claim_statements(arrays: bool) -> _ClaimStatements:
    now = bindparam("now", type_=Message.next_attempt_at.type)
    due = (
        select(MESSAGES.c.patient_id)
        .join(Patient, Patient.id == MESSAGES.c.patient_id)
        .where(MESSAGES.c.status == MessageStatus.PENDING.value)
        .where(MESSAGES.c.next_attempt_at <= now)
        .order_by(MESSAGES.c.next_attempt_at, MESSAGES.c.id)
        .limit(bindparam("limit", type_=Integer))
        # Patient first: PostgreSQL locks a row's tables in the order of this list and keeps
        # what it locked of a row it then skips, so a message locked before its patient was
        # found taken stayed locked to the end of this claim (the holder's claim waited on it,
        # and two workers could deadlock).
        .with_for_update(of=[Patient, MESSAGES], skip_locked=True)
    )
    still_due: list[ColumnElement[bool]] = [
        MESSAGES.c.status == MessageStatus.PENDING.value,
        MESSAGES.c.next_attempt_at <= now,
    ]
    if not arrays:
        # SQLite, without statistics, read these terms through the claim index: the whole
        # wave for every batch (O(wave) per claim). likely() says they filter little, so its
        # planner reads the patients' index instead.
        still_due = [func.likely(term) for term in still_due]
    claim = (
        update(MESSAGES)
        .where(one_of(MESSAGES.c.patient_id, "patients", arrays=arrays))
        .where(*still_due)
        .values(
            status=MessageStatus.SENDING.value,
            claimed_by=bindparam("worker", type_=String),
            claimed_at=now,
            attempts=MESSAGES.c.attempts + 1,
            updated_at=now,
        )
        .returning(MESSAGES.c.id, MESSAGES.c.next_attempt_at)
    )
    claimed_rows = (
        claimed_query()
        .where(one_of(Message.id, "ids", arrays=arrays))
        .where(one_of(Patient.id, "patients", arrays=arrays))
    )
    # By the patients' index only: with the status in the WHERE clause, SQLite (and PostgreSQL
    # on stale statistics) walked a status index over every SMS ever sent, 45 ms a batch at
    # 20,000 patients. Rows never claimed have no instant; the status is checked in Python.
    at = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.claimed_at)
    history = select(MESSAGES.c.id, MESSAGES.c.patient_id, MESSAGES.c.status, at).where(
        one_of(MESSAGES.c.patient_id, "ids", arrays=arrays),
        MESSAGES.c.channel == "sms",
        at.is_not(None),
    )
    return _ClaimStatements(due, claim, claimed_rows, history)


# SMS that count for the opt-out line and the caps: sent, or held "sending" (outcome unknown).
_COUNTED = frozenset(
    {MessageStatus.SENT.value, MessageStatus.SENDING.value, MessageStatus.UNDELIVERED.value}
)


def sms_sent_at(
    connection: Connection, patient_ids: Iterable[int], *, excluding: Collection[int] = ()
) -> dict[int, list[datetime]]:
    """When each of these patients was sent an SMS, counting SMS in "sending" other than the
    `excluding` messages, at their claim time."""
    history = _claim_statements(connection.dialect.name == "postgresql").history
    sent: dict[int, list[datetime]] = defaultdict(list)
    skip = set(excluding)
    for chunk in chunks(sorted(set(patient_ids))):
        rows = connection.execute(history, {"ids": list(chunk)})
        for message_id, patient_id, status, at in rows:
            if status in _COUNTED and message_id not in skip:
                sent[patient_id].append(at)
    return sent
