"""Planned messages are stored with COPY on PostgreSQL (batched INSERTs on SQLite, and for a
few rows): the same rows either way, and a refused row still fails alone in a CSV import
(row-by-row fall-back). Every test here runs with COPY from the first row and without COPY."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import write_demo_plan
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from test_cli import run, write_plan

from reminders.app import App
from reminders.catalog import PlanCatalog
from reminders.settings import Settings
from reminders.store import bulk
from reminders.store.schema import Enrollment, Message, Patient, random_uids
from reminders.store.storage import Storage

BAD_CSV = Path(__file__).parent / "bad_inputs" / "csv"


@pytest.fixture(autouse=True, params=["copy", "insert"])
def rows_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """COPY for any number of rows (on PostgreSQL), or never."""
    monkeypatch.setattr(bulk, "COPY_FROM_ROWS", 1 if request.param == "copy" else 10**9)
    return str(request.param)


def test_stored_messages_are_the_planned_ones(storage: Storage, tmp_path: Path) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    requests = due_now_requests(catalog, now, 30, steps=("discharge", "week-one"))

    storage.patients.enroll_many(requests, now)

    planned = {
        (r.patient.external_id, m.step_id): (m.due_at, m.send_before)
        for r in requests
        for m in r.messages
    }
    with storage.database.session() as session:
        rows = session.execute(
            select(Message.step_id, Message.due_at, Message.send_before, Message.uid)
        ).all()
        ids = dict(session.execute(text("SELECT id, external_id FROM patients")).all())
        owners = session.execute(select(Message.step_id, Message.patient_id)).all()
    assert len(rows) == len(planned) == 60
    assert sorted((ids[p], s) for s, p in owners) == sorted(planned)
    assert {(r.due_at, r.send_before) for r in rows} == set(planned.values())
    assert all(r.due_at.tzinfo is UTC for r in rows)
    assert len({r.uid for r in rows}) == 60 and None not in {r.uid for r in rows}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ("messages", "NEW.patient_id = (SELECT id FROM patients WHERE external_id = 'c2')"),
        ("enrollments", "NEW.patient_id = (SELECT id FROM patients WHERE external_id = 'c2')"),
        ("patients", "NEW.external_id = 'c2'"),
    ],
)
def test_a_row_the_database_refuses_fails_alone_with_copy(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, refused: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_plan(tmp_path)
    env = {
        "REMINDERS_DATABASE_URL": postgres_url,
        "REMINDERS_PLANS_DIR": str(tmp_path / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(tmp_path / "templates"),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "COLUMNS": "250",
    }
    settings = Settings(
        _env_file=None,
        database_url=postgres_url,
        plans_dir=tmp_path / "plans",
        templates_dir=tmp_path / "templates",
    )
    app = App.from_settings(settings)  # migrated
    with app.storage.database.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse_bob() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {refused} THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER refuse_bob BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_bob()"
            )
        )

    result = run(env, "import", str(BAD_CSV / "tab_separated.csv"))

    assert result.exit_code == 1
    assert "rejected: line 3: row: the database refused this row" in result.stderr
    assert "Traceback" not in result.output
    assert [p.external_id for p in app.storage.patient_lists.list_patients(100)] == ["c1"]
    app.close()


def test_new_and_known_patients_in_one_batch_get_their_own_ids(
    storage: Storage, tmp_path: Path
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    requests = due_now_requests(catalog, now, 7, steps=("discharge", "week-one"))
    storage.patients.enroll_many([requests[5], requests[1], requests[3]], now)
    # Known and new patients interleaved, in an order unlike their external ids' or ids'.
    order = [6, 3, 0, 5, 2, 1, 4]
    batch = [
        replace(
            requests[i],
            patient=replace(requests[i].patient, attributes={"note": f"ü-{i}", "n": i}),
        )
        for i in order
    ]

    outcomes = storage.patients.enroll_many(batch, now)

    with storage.database.session() as session:
        patients = {
            eid: (pid, attributes)
            for eid, pid, attributes in session.execute(
                select(Patient.external_id, Patient.id, Patient.attributes)
            )
        }
        enrollments = dict(session.execute(select(Enrollment.patient_id, Enrollment.id)).all())
        messages = session.execute(select(Message.patient_id, Message.enrollment_id)).all()
    assert [o.external_id for o in outcomes] == [r.patient.external_id for r in batch]
    assert [o.created for o in outcomes] == [i not in (5, 1, 3) for i in order]
    for outcome, i in zip(outcomes, order, strict=True):
        patient_id, attributes = patients[outcome.external_id]
        assert outcome.patient_id == patient_id
        assert outcome.enrollment_id == enrollments[patient_id]
        assert attributes == {"note": f"ü-{i}", "n": i}
    assert len(patients) == len(enrollments) == 7 and len(set(enrollments.values())) == 7
    assert len(messages) == 14
    assert all(enrollments[patient_id] == enrollment_id for patient_id, enrollment_id in messages)


def test_instants_around_dst_changes_are_stored_as_the_same_naive_utc(
    storage: Storage, tmp_path: Path
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
    new_york, berlin = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
    # Either side of New York's spring change and of Berlin's autumn change (the repeated
    # hour, both folds), given in UTC and in the zone itself.
    instants = [
        datetime(2027, 3, 14, 6, 30, tzinfo=UTC),
        datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
        datetime(2027, 3, 14, 1, 59, tzinfo=new_york),
        datetime(2027, 3, 14, 3, 0, tzinfo=new_york),
        datetime(2027, 10, 31, 2, 30, tzinfo=berlin),
        datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=berlin),
        datetime(2027, 10, 31, 0, 59, 59, 999999, tzinfo=UTC),
    ]
    template = due_now_requests(catalog, now, 1, steps=("discharge",))[0]
    requests = [
        replace(
            template,
            patient=replace(template.patient, external_id=f"D-{i}", phone=f"+120255501{i:02d}"),
            messages=[replace(template.messages[0], due_at=due, send_before=instants[-1])],
        )
        for i, due in enumerate(instants)
    ]

    storage.patients.enroll_many(requests, now)

    with storage.database.session() as session:
        raw = session.execute(
            text(
                "SELECT p.external_id, m.due_at, m.send_before, m.next_attempt_at, m.created_at "
                "FROM messages m JOIN patients p ON p.id = m.patient_id"
            )
        ).all()
        ids = dict(session.execute(select(Patient.external_id, Patient.id)).all())
        read = dict(session.execute(select(Message.patient_id, Message.due_at)).all())
    stored = {row[0]: [_naive(value) for value in row[1:]] for row in raw}
    last = instants[-1].replace(tzinfo=None)
    for i, due in enumerate(instants):
        utc = due.astimezone(UTC).replace(tzinfo=None)
        assert stored[f"D-{i}"] == [utc, last, utc, now.replace(tzinfo=None)]
        assert read[ids[f"D-{i}"]] == due.astimezone(UTC) and read[ids[f"D-{i}"]].tzinfo is UTC


def _naive(value: datetime | str) -> datetime:
    """A naive timestamp as the database returns it (SQLite: its text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def test_message_uids_are_version_4_uuids_in_hex() -> None:
    uids = random_uids(3000)

    assert len(set(uids)) == 3000
    for uid in uids:
        parsed = uuid.UUID(uid)
        assert parsed.hex == uid and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_naive_instant_is_refused_and_nothing_is_stored(storage: Storage, tmp_path: Path) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    [request] = due_now_requests(catalog, now, 1, steps=("discharge",))
    naive = replace(request.messages[0], due_at=datetime(2027, 3, 14, 7, 30))

    with pytest.raises((ValueError, TypeError, StatementError), match="naive"):
        storage.patients.enroll_many([replace(request, messages=[naive])], now)

    with storage.database.session() as session:
        assert session.execute(text("SELECT count(*) FROM patients")).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM messages")).scalar() == 0
