"""Migration 0013: a message refers to its enrollment and that enrollment's patient by one
foreign key on PostgreSQL (one check per inserted row instead of two), a patient's messages
still go with them on both databases, and a populated database migrates both ways."""

from __future__ import annotations

import pytest
from api_fixtures import World
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from test_migration_indexes import insert_patient_and_messages

from reminders.store import migrate

KEYS = (
    "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
    "WHERE conrelid = 'messages'::regclass AND contype = 'f' ORDER BY conname"
)
COMBINED = (
    "fk_messages_enrollment_patient_enrollments",
    "FOREIGN KEY (enrollment_id, patient_id) REFERENCES enrollments(id, patient_id) "
    "ON DELETE CASCADE",
    True,
)
BEFORE = [
    (
        "fk_messages_enrollment_id_enrollments",
        "FOREIGN KEY (enrollment_id) REFERENCES enrollments(id) ON DELETE CASCADE",
        True,
    ),
    (
        "fk_messages_patient_id_patients",
        "FOREIGN KEY (patient_id) REFERENCES patients(id) ON DELETE CASCADE",
        True,
    ),
]


def keys(engine: Engine) -> list[tuple[str, str, bool]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(KEYS))]  # type: ignore[misc]


@pytest.mark.postgres
def test_a_populated_database_moves_to_one_key_and_back(postgres_engine: Engine) -> None:
    migrate.upgrade(postgres_engine, "0012")
    insert_patient_and_messages(postgres_engine)
    assert keys(postgres_engine) == BEFORE

    migrate.upgrade(postgres_engine)
    assert keys(postgres_engine) == [COMBINED]

    migrate.downgrade(postgres_engine, "0012")
    assert keys(postgres_engine) == BEFORE
    migrate.upgrade(postgres_engine)
    assert keys(postgres_engine) == [COMBINED]
    with postgres_engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM messages")) == 2


@pytest.mark.postgres
def test_a_message_cannot_name_another_patient_than_its_enrollments(
    postgres_engine: Engine,
) -> None:
    migrate.upgrade(postgres_engine)
    insert_patient_and_messages(postgres_engine)
    with postgres_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, external_id, first_name, timezone, language, "
                "preferred_channel, sms_consent, attributes, created_at, updated_at) VALUES "
                "(2, 'P-2', 'Olu', 'UTC', 'en', 'sms', true, '{}', now(), now())"
            )
        )
    with (
        pytest.raises(IntegrityError, match="fk_messages_enrollment_patient_enrollments"),
        postgres_engine.begin() as connection,
    ):
        connection.execute(text("UPDATE messages SET patient_id = 2 WHERE id = 1"))


@pytest.mark.usefixtures("database_url")  # on each database
def test_a_deleted_patient_takes_their_messages_along(world: World) -> None:
    assert world.enroll("P-1", "+13125550100").status_code == 201
    engine = world.app.storage.database.engine
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM messages")) > 0

    assert world.app.storage.patients.delete_patient("P-1") is True

    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM messages")) == 0
        assert connection.scalar(text("SELECT count(*) FROM enrollments")) == 0
