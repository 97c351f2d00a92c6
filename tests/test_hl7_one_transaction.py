"""One SIU message is one transaction: the control-id check, the appointment's order, the
enrollment with its audit entry, and the log line with the raw text and the ACK are committed
together, or none of them, on SQLite and PostgreSQL.

Messages go over a real TCP MLLP connection (python-hl7's MLLPClient to our listener); the
statements are counted with SQLAlchemy's engine events while the listener handles them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from feed_fixtures import Feed, MllpSender, ack_code, ack_text, open_feed, siu
from sqlalchemy import Engine, event, insert, text, update

from reminders.store.feeds import FEED_APPOINTMENTS, FEED_MESSAGES

# Measured 2026-11-26, statements per message (SQLite's count includes its BEGIN IMMEDIATE):
# a new booking 15 on SQLite, 13 on PostgreSQL; a move 16 / 15; a cancellation 9 / 8; a
# replay 3 / 2. Before one message became one transaction, a booking took 8 transactions and
# 27 / 18 statements, a cancellation 5 and 14 / 9. The bounds leave one statement of slack.
MOST_STATEMENTS = {"book": 16, "move": 17, "cancel": 10, "replay": 4}


@dataclass
class Counted:
    """What the database was asked while a message was handled."""

    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0


@contextmanager
def counting(feed: Feed) -> Iterator[Counted]:
    """Count statements and transactions on the feed's engine within the block."""
    engine = feed.app.storage.database.engine
    counted = Counted()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        counted.statements.append(" ".join(sql.split())[:80])

    def begin(_conn: Any) -> None:
        counted.begins += 1

    def commit(_conn: Any) -> None:
        counted.commits += 1

    def rollback(_conn: Any) -> None:
        counted.rollbacks += 1

    hooks = [
        ("before_cursor_execute", statement),
        ("begin", begin),
        ("commit", commit),
        ("rollback", rollback),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield counted
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


@pytest.fixture
def feed(tmp_path: Path, database_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, database_url) as opened:
        yield opened


@pytest.fixture
def send(feed: Feed) -> Iterator[MllpSender]:
    sender = MllpSender(feed)
    try:
        yield sender
    finally:
        sender.close()


def test_each_message_is_one_transaction_with_few_statements(feed: Feed, send: MllpSender) -> None:
    # Another patient first: the hourly purge of old raw text has run, as in a running feed.
    other = siu("S12", "M0", appointment="APT0", mrn="MRN0", phone="^PRN^CP^^1^312^5550100")
    assert ack_code(send(other)) == "AA"

    with counting(feed) as booked:
        assert ack_code(send(siu("S12", control_id="M1"))) == "AA"
    with counting(feed) as moved:
        move = siu("S13", control_id="M2", sent="20270302090000", start="20270324143000+0000")
        assert ack_code(send(move)) == "AA"
    with counting(feed) as replayed:
        again = send(siu("S12", control_id="M1"))
    with counting(feed) as cancelled:
        assert ack_code(send(siu("S15", control_id="M3", sent="20270303090000"))) == "AA"

    assert "already received" in ack_text(again)
    for name, counted in [
        ("book", booked),
        ("move", moved),
        ("replay", replayed),
        ("cancel", cancelled),
    ]:
        assert (name, counted.begins, counted.commits, counted.rollbacks) == (name, 1, 1, 0)
        assert len(counted.statements) <= MOST_STATEMENTS[name], (name, counted.statements)
    assert feed.log.outcome_counts() == {"enrolled": 2, "moved": 1, "cancelled": 1}
    audit = feed.app.storage.access.audit_entries(external_id="MRN1")
    assert [(entry.actor, entry.action) for entry in reversed(audit)] == [
        ("hl7:RIVERSIDE", "enroll"),
        ("hl7:RIVERSIDE", "update"),
        ("hl7:RIVERSIDE", "cancel"),
    ]


def _refuse_audit_entries(feed: Feed) -> None:
    """A trigger that refuses the audit log's next entries, on SQLite or PostgreSQL."""
    engine = feed.app.storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused by a test trigger'; END $$ LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        )


def _allow_audit_entries(feed: Feed) -> None:
    with feed.app.storage.database.engine.begin() as connection:
        connection.execute(
            text(
                "DROP TRIGGER refuse_audit"
                if connection.dialect.name == "sqlite"
                else "DROP TRIGGER refuse_audit ON audit_log"
            )
        )


def test_a_message_that_fails_half_way_changes_nothing_and_is_applied_when_sent_again(
    feed: Feed, send: MllpSender
) -> None:
    _refuse_audit_entries(feed)

    failed = send(siu("S12", control_id="M1"))

    assert ack_code(failed) == "AE"
    assert "send it again later" in ack_text(failed)
    assert feed.timeline("MRN1") == []  # the enrollment went with the audit entry
    assert feed.log.outcome_counts() == {}  # and the log line: the replay is not a duplicate

    _allow_audit_entries(feed)
    again = send(siu("S12", control_id="M1"))

    assert ack_code(again) == "AA"
    assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 10)
    assert feed.log.outcome_counts() == {"enrolled": 1}
    assert [entry.action for entry in feed.app.storage.access.audit_entries()] == ["enroll"]


@pytest.mark.postgres
def test_a_message_another_process_logs_meanwhile_is_answered_as_a_replay_and_undone(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two processes get the same message (an engine resending after a timeout): the first
    to commit wins; the other one's enrollment is rolled back with its log line."""
    with open_feed(tmp_path, postgres_url) as feed, ExitStack() as stack:
        send = MllpSender(feed)
        stack.callback(send.close)
        engine = feed.app.storage.database.engine
        other_process = stack.enter_context(engine.connect())
        other = other_process.begin()
        other_process.execute(insert(FEED_MESSAGES).values(**LOGGED_ELSEWHERE))

        # Our listener reads no such control id (not committed), enrolls, and waits on the
        # unique index when it logs the message; the other process then commits.
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(send, siu("S12", control_id="M1"))
            assert wait_for_a_lock_wait(engine), "the listener never waited on the other process"
            other.commit()
            ack = answer.result(timeout=30)

        assert ack_code(ack) == "AA"
        assert "already received (first: enrolled)" in ack_text(ack)
        assert feed.timeline("MRN1") == []  # our enrollment went with our log line
        assert feed.app.storage.access.audit_entries() == []
        assert feed.log.outcome_counts() == {"enrolled": 1}


LOGGED_ELSEWHERE = {
    "source": "hl7",
    "sender": "RIVERSIDE",
    "message_id": "M1",
    "actor": "hl7:RIVERSIDE",
    "received_at": datetime(2027, 3, 1, 15, 0, tzinfo=UTC),
    "sent_at": None,
    "event": "S12",
    "appointment_id": "APT1",
    "external_id": "MRN1",
    "plan_id": "demo",
    "outcome": "enrolled",
    "ack_code": "AA",
    "detail": "enrolled on plan demo (by the other process)",
    "raw": None,
}


def wait_for_a_lock_wait(engine: Engine, seconds: float = 20) -> bool:
    """Whether some session of this database comes to wait for a lock within `seconds`."""
    deadline = time.monotonic() + seconds
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return True
            connection.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.05)
    return False


@pytest.mark.postgres
def test_messages_of_one_appointment_wait_for_each_other_across_processes(
    tmp_path: Path, postgres_url: str
) -> None:
    """Another process is applying a newer message of the appointment: ours waits for it and
    is then older than what was applied, so it changes nothing (MSH-7 order holds)."""
    with open_feed(tmp_path, postgres_url) as feed, ExitStack() as stack:
        send = MllpSender(feed)
        stack.callback(send.close)
        assert ack_code(send(siu("S12", control_id="M1", sent="20270301090000"))) == "AA"
        engine = feed.app.storage.database.engine
        other_process = stack.enter_context(engine.connect())
        other = other_process.begin()
        other_process.execute(
            update(FEED_APPOINTMENTS)
            .where(FEED_APPOINTMENTS.c.appointment_id == "APT1")
            .values(last_sent_at=datetime(2027, 3, 3, 15, 0, tzinfo=UTC))
        )

        with ThreadPoolExecutor(1) as pool:
            moved = siu("S13", control_id="M2", sent="20270302090000", start="20270324143000+0000")
            answer = pool.submit(send, moved)
            assert wait_for_a_lock_wait(engine), "the listener never waited on the other process"
            other.commit()
            ack = answer.result(timeout=30)

        assert ack_code(ack) == "AA"
        assert "older than the last message applied" in ack_text(ack)
        assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 10)
