"""Each bad CSV file of tests/bad_inputs/csv: the exact error, by line, and every other row kept.

Imported with `reminders import` (the CLI) and through the CsvImport service the console's
upload page calls, on a real SQLite file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from entry_points import cli_env
from sqlalchemy import text
from test_cli import run, write_plan

from reminders.access.actor import Actor
from reminders.app import App
from reminders.csv_import import CHUNK
from reminders.errors import EnrollmentError
from reminders.settings import Settings

BAD_CSV = Path(__file__).parent / "bad_inputs" / "csv"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(tmp_path, monkeypatch)


@pytest.fixture
def app(env: dict[str, str], tmp_path: Path) -> Any:
    settings = Settings(
        database_url=env["REMINDERS_DATABASE_URL"],
        plans_dir=tmp_path / "plans",
        templates_dir=tmp_path / "templates",
        _env_file=None,  # type: ignore[call-arg]
    )
    opened = App.from_settings(settings)
    yield opened
    opened.close()


def imported(env: dict[str, str], name: str) -> tuple[int, dict[str, Any]]:
    result = run(env, "import", str(BAD_CSV / name), "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def problems(report: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(p["line"], p["field"], p["message"]) for p in report["problems"]]


def enrolled(app: App) -> list[str]:
    return sorted(p.external_id for p in app.storage.patient_lists.list_patients(100))


def test_excel_semicolons_with_a_byte_order_mark_import_and_the_bad_date_is_named(
    env: dict[str, str], app: App
) -> None:
    code, report = imported(env, "semicolon_bom.csv")

    assert code == 1
    assert problems(report) == [(3, "procedure_date", "expected YYYY-MM-DD, e.g. 2027-03-09")]
    assert (report["created"], report["rejected"]) == (2, 1)
    assert report["notes"] == ["columns separated by ';'"]
    assert enrolled(app) == ["c1", "c3"]


def test_a_tab_separated_file_imports(env: dict[str, str], app: App) -> None:
    code, report = imported(env, "tab_separated.csv")

    assert (code, report["created"], report["notes"]) == (0, 2, ["columns separated by tab"])
    assert enrolled(app) == ["c1", "c2"]


def test_a_windows_1252_file_is_read_as_such_and_the_summary_says_so(
    env: dict[str, str], app: App
) -> None:
    code, report = imported(env, "windows_1252.csv")

    assert (code, report["created"]) == (0, 2)
    assert report["notes"] == ["the file is not UTF-8: it was read as Windows-1252 (Excel's CSV)"]
    names = {p.external_id: p.first_name for p in app.storage.patient_lists.list_patients(10)}
    assert names == {"c1": "José", "c2": "Zoë"}


def test_a_nul_byte_rejects_its_row_and_the_others_land(env: dict[str, str], app: App) -> None:
    code, report = imported(env, "nul_byte.csv")

    assert code == 1
    assert problems(report) == [(3, "first_name", "must not contain NUL characters")]
    assert enrolled(app) == ["c1", "c3"]


def test_a_cell_over_the_field_limit_rejects_its_row_by_line(env: dict[str, str], app: App) -> None:
    code, report = imported(env, "long_cell.csv")

    assert code == 1
    assert problems(report) == [
        (3, "row", "attr_takes_blood_thinners: a cell over 1,000 characters")
    ]
    assert enrolled(app) == ["c1", "c3"]


def test_names_a_spreadsheet_reads_as_formulas_are_refused(env: dict[str, str], app: App) -> None:
    code, report = imported(env, "formula.csv")

    assert code == 1
    assert [(line, field) for line, field, _ in problems(report)] == [
        (3, "first_name"),
        (4, "first_name"),
        (5, "first_name"),
        (6, "first_name"),
    ]
    assert [message.split(",")[0] for _, _, message in problems(report)] == [
        "starts with '='",
        "starts with '+'",
        "starts with '-'",
        "starts with '@'",
    ]
    assert enrolled(app) == ["c1"]


def test_dates_times_and_zones_say_how_to_write_them(env: dict[str, str], app: App) -> None:
    code, report = imported(env, "dates_and_zones.csv")

    assert code == 1
    assert problems(report) == [
        (3, "procedure_date", "expected YYYY-MM-DD, e.g. 2027-03-09"),
        (4, "timezone", "EST has no daylight saving; use America/New_York"),
        (5, "procedure_time", "expected HH:MM, 24-hour, e.g. 07:30"),
    ]
    assert enrolled(app) == ["c1"]


def test_a_header_that_no_separator_explains_says_what_the_file_looks_like(
    env: dict[str, str], app: App
) -> None:
    result = run(env, "import", str(BAD_CSV / "semicolon_unknown_header.csv"))

    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line] == [
        "error: line 1: file: this file looks separated by ';', but its header does not name "
        "the columns (missing external_id, first_name, timezone, procedure_date; unknown "
        "id_externo, nombre, telefono, zona, fecha); check the first line"
    ]
    assert enrolled(app) == []


def test_the_service_dry_run_lists_every_bad_row_and_stores_nothing(app: App) -> None:
    importer = app.csv_import(Actor.user("nina"))

    report = importer.run((BAD_CSV / "formula.csv").read_bytes(), dry_run=True)

    assert report.dry_run
    assert [p.line for p in report.problems] == [3, 4, 5, 6]
    assert report.counts() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 4}
    assert enrolled(app) == []


def test_the_service_refuses_a_file_that_is_not_text(app: App) -> None:
    with pytest.raises(EnrollmentError) as caught:
        app.csv_import(Actor.user("nina")).run(b"\x81\x8d\x8f\x90\x9d" * 10)

    assert str(caught.value) == (
        "line 1: file: not UTF-8 text (byte 1 cannot be read); save it as CSV UTF-8"
    )


def test_a_bad_byte_past_the_first_chunk_stops_the_file_before_anything_is_stored(
    app: App,
) -> None:
    good = (BAD_CSV / "tab_separated.csv").read_bytes() + b"\n" * CHUNK
    with pytest.raises(EnrollmentError) as caught:
        app.csv_import(Actor.user("nina")).run(good + b"\x81\n")

    assert str(caught.value) == (
        f"line 1: file: not UTF-8 text (byte {len(good) + 1} cannot be read); save it as CSV UTF-8"
    )
    assert enrolled(app) == []


def test_an_open_file_is_streamed_with_a_character_split_across_chunks(
    app: App, tmp_path: Path
) -> None:
    header, ann, bob = (BAD_CSV / "tab_separated.csv").read_bytes().splitlines(keepends=True)
    ann = ann.replace(b"Ann", "Zoé".encode())
    padding = b"\n" * (CHUNK - 1 - len(header) - ann.index("é".encode()))
    data = header + padding + ann + bob
    assert data.index("é".encode()) == CHUNK - 1  # its two bytes straddle the chunks
    path = tmp_path / "long.csv"
    path.write_bytes(data)

    with path.open("rb") as file:
        report = app.csv_import(Actor.user("nina")).run(file)
        assert not file.closed

    assert report.counts() == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert report.notes == ["columns separated by tab"]
    assert "Zoé" in [p.first_name for p in app.storage.patient_lists.list_patients(100)]


# -- a database error never takes good rows with it -----------------------------------------


def test_a_database_error_rejects_only_its_row_and_prints_no_patient_data(
    env: dict[str, str], app: App, caplog: pytest.LogCaptureFixture
) -> None:
    _refuse_on(app, "c2")
    caplog.set_level(logging.DEBUG)

    result = run(env, "import", str(BAD_CSV / "tab_separated.csv"))

    assert result.exit_code == 1
    assert "rejected: line 3: row: the database refused this row (IntegrityError)" in (
        result.stderr
    )
    assert enrolled(app) == ["c1"]
    shown = result.output + caplog.text
    assert "Traceback" not in shown
    for patient_data in ("Bob", "312-555-0112", "+13125550112", "bob@example.org"):
        assert patient_data not in shown


def _refuse_on(app: App, external_id: str) -> None:
    """A trigger refusing one patient's insert, on SQLite or PostgreSQL."""
    engine = app.storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON patients "
                    f"WHEN NEW.external_id = '{external_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.external_id = '{external_id}' THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON patients "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )
        )


@pytest.fixture
def app_on_each_database(database_url: str, tmp_path: Path) -> Any:
    """An App with the test plan on SQLite and on PostgreSQL."""
    write_plan(tmp_path)
    settings = Settings(
        database_url=database_url,
        plans_dir=tmp_path / "plans",
        templates_dir=tmp_path / "templates",
        _env_file=None,  # type: ignore[call-arg]
    )
    opened = App.from_settings(settings)
    yield opened
    opened.close()


def test_the_service_names_the_row_the_database_refused_on_each_database(
    app_on_each_database: App, caplog: pytest.LogCaptureFixture
) -> None:
    opened = app_on_each_database
    _refuse_on(opened, "c2")
    caplog.set_level(logging.DEBUG)

    report = opened.csv_import(Actor.user("nina")).run((BAD_CSV / "tab_separated.csv").read_bytes())

    assert report.counts() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    [problem] = report.problems
    assert (problem.line, problem.field) == (3, "row")
    assert problem.message.startswith("the database refused this row (")
    assert enrolled(opened) == ["c1"]
    for patient_data in ("Bob", "312-555-0112", "+13125550112", "bob@example.org"):
        assert patient_data not in caplog.text + problem.message


def test_batches_in_flight_together_keep_every_good_row_and_name_the_refused_one(
    app_on_each_database: App,
) -> None:
    """On PostgreSQL two batches are enrolled at once; a refused row in one of them still
    costs only itself, and every other batch's rows are stored, in any order of completion."""
    header = "external_id,first_name,phone,timezone,plan,procedure_date,sms_consent"
    rows = [
        f"c{n},Ann,202-555-01{n:02d},America/New_York,knee,2030-03-{n + 1:02d},yes"
        for n in range(1, 12)
    ]
    opened = app_on_each_database
    _refuse_on(opened, "c6")
    importer = opened.csv_import(Actor.user("nina"))
    importer.batch_size = 2
    lines_done: list[int] = []

    report = importer.run(
        "\n".join([header, *rows]).encode(),
        progress=lambda done, total: lines_done.append(done),
    )

    assert opened.enrollment(Actor.user("nina")).concurrent_writers is (
        opened.storage.database.engine.dialect.name == "postgresql"
    )
    assert report.counts() == {"created": 10, "updated": 0, "unchanged": 0, "rejected": 1}
    assert [(p.line, p.field) for p in report.problems] == [(7, "row")]
    assert enrolled(opened) == sorted(f"c{n}" for n in range(1, 12) if n != 6)
    assert lines_done == [3, 5, 7, 9, 11, 12]  # in file order, whatever finished first
