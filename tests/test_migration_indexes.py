"""Indexes on the large tables are built without stopping dispatchers that are writing."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text

from reminders.store import migrate
from reminders.store.database import make_engine

pytestmark = pytest.mark.postgres

INDEXES = ("ix_messages_status_next_attempt_at_id", "ix_messages_updated_at_id")


def insert_patient_and_messages(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, external_id, first_name, timezone, language, "
                "preferred_channel, sms_consent, attributes, created_at, updated_at) VALUES "
                "(1, 'P-1', 'Maria', 'UTC', 'en', 'sms', true, '{}', now(), now())"
            )
        )
        connection.execute(
            text(
                "INSERT INTO enrollments (id, patient_id, plan_id, plan_version, procedure_date, "
                "status, created_at, updated_at) VALUES (1, 1, 'demo', 1, '2026-03-01', "
                "'active', now(), now())"
            )
        )
        for message_id in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO messages (id, enrollment_id, patient_id, plan_id, plan_version, "
                    "step_id, phase, channel, template, language, due_at, send_before, "
                    "next_attempt_at, status, attempts, created_at, updated_at) VALUES "
                    "(:id, 1, 1, 'demo', 1, :step, 'recovery', 'sms', 't', 'en', now(), now(), "
                    "now(), 'pending', 0, now(), now())"
                ),
                {"id": message_id, "step": f"s{message_id}"},
            )


def waiting_for_a_lock(engine: Engine, application_name: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                    "AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            )
        )


def test_new_indexes_let_other_workers_write_while_they_are_built(postgres_engine: Engine) -> None:
    migrate.upgrade(postgres_engine, "0003")  # the revision before the indexes
    insert_patient_and_messages(postgres_engine)
    # A dispatcher in the middle of recording an outcome: its transaction stays open.
    in_flight = postgres_engine.connect()
    in_flight.execute(text("UPDATE messages SET attempts = 1 WHERE id = 1"))

    migrator = make_engine(
        postgres_engine.url.update_query_dict({"application_name": "migrator"}).render_as_string(
            hide_password=False
        )
    )
    upgraded = threading.Thread(target=migrate.upgrade, args=(migrator,))
    upgraded.start()
    deadline = time.monotonic() + 30
    while not waiting_for_a_lock(postgres_engine, "migrator"):
        assert time.monotonic() < deadline, "the migration never reached the index build"
        time.sleep(0.05)

    # While the build waits for the open transaction, another worker claims and records.
    with postgres_engine.begin() as other:
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        changed = other.execute(text("UPDATE messages SET status = 'sending' WHERE id = 2"))
    assert changed.rowcount == 1

    in_flight.commit()
    in_flight.close()
    upgraded.join(timeout=60)
    migrator.dispose()
    assert migrate.current_revision(postgres_engine) == migrate.head_revision()
    with postgres_engine.connect() as connection:
        valid = connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = ANY(:names) AND pg_table_is_visible(c.oid)"
            ),
            {"names": list(INDEXES)},
        ).all()
    assert sorted(valid) == sorted((name, True) for name in INDEXES)
