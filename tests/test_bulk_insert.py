"""Planned messages are stored with COPY on PostgreSQL (batched INSERTs on SQLite): the same
rows either way, and a refused row still fails alone in a CSV import (row-by-row fall-back)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import write_demo_plan
from sqlalchemy import select, text
from test_cli import run, write_plan

from reminders.app import App
from reminders.catalog import PlanCatalog
from reminders.settings import Settings
from reminders.store.schema import Message
from reminders.store.storage import Storage

BAD_CSV = Path(__file__).parent / "bad_inputs" / "csv"


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
def test_a_row_the_database_refuses_fails_alone_with_copy(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
                "IF NEW.patient_id = (SELECT id FROM patients WHERE external_id = 'c2') THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_bob BEFORE INSERT ON messages "
                "FOR EACH ROW EXECUTE FUNCTION refuse_bob()"
            )
        )

    result = run(env, "import", str(BAD_CSV / "tab_separated.csv"))

    assert result.exit_code == 1
    assert "rejected: line 3: row: the database refused this row" in result.stderr
    assert "Traceback" not in result.output
    assert [p.external_id for p in app.storage.patient_lists.list_patients(100)] == ["c1"]
    app.close()
