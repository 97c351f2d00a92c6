"""The `reminders` command line, run in-process against SQLite and a small plan in tmp_path."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.api.schemas import MessageOut, PatientOut
from reminders.catalog import PlanCatalog
from reminders.cli.main import app
from reminders.consent import SmsConsentService, StopCause, StopVia
from reminders.store.reply_records import SmsStopKind
from reminders.store.storage import Storage

PLAN = """\
id: knee
name: Knee arthroscopy
version: 1
procedure: knee arthroscopy
languages: [en]
defaults:
  send_time: "09:00"
  quiet_hours: {start: "21:00", end: "08:00"}
  max_late: 12h
sms_caps: {per_day: 3, per_week: 10}
attributes:
  takes_blood_thinners:
    type: yes/no
    description: The care team recorded that the patient takes a blood thinner.
steps:
  - id: welcome
    phase: pre-procedure
    offset: {days: -14}
    template: welcome
  - id: blood-thinners
    phase: pre-procedure
    offset: {days: -7}
    template: blood-thinners
    when: {takes_blood_thinners: true}
  - id: day-before
    phase: pre-procedure
    offset: {days: -1, at: "16:00"}
    template: day-before
  - id: discharge
    phase: day-of
    offset: {hours_after_procedure: 4}
    template: discharge
  - id: week-1
    phase: recovery
    offset: {weeks: 1}
    template: week-1
"""

OPT_OUT = "{% if first_sms %} Reply STOP to opt out.{% endif %}"
SMS = {
    "welcome": "{{ clinic.name }}: Hi {{ patient.first_name }}, your {{ procedure.name }} is on "
    "{{ procedure.date|longdate(language) }}." + OPT_OUT,
    "blood-thinners": "{{ clinic.name }}: ask your care team about your blood thinner." + OPT_OUT,
    "day-before": "{{ clinic.name }}: Hi {{ patient.first_name }}, see you tomorrow." + OPT_OUT,
    "discharge": "{{ clinic.name }}: rest today. Emergency? Call 911." + OPT_OUT,
    "week-1": "{{ clinic.name }}: one week since your {{ procedure.name }}." + OPT_OUT,
}

EMAIL = (
    "{% block subject %}{{ procedure.name }}: {{ step.id }}{% endblock %}"
    "{% block text %}Hi {{ patient.first_name }}, this is {{ step.id }}.{% endblock %}"
)

HEADER = (
    "external_id,first_name,phone,email,timezone,language,preferred_channel,sms_consent,"
    "plan,procedure_date,procedure_time,attr_takes_blood_thinners"
)


def write_plan(root: Path, text: str = PLAN) -> None:
    """The knee plan and its English templates under root/plans and root/templates."""
    (root / "plans").mkdir(exist_ok=True)
    (root / "plans" / "knee.yaml").write_text(text, encoding="utf-8")
    folder = root / "templates" / "knee" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in SMS.items():
        (folder / f"{name}.sms.j2").write_text(body, encoding="utf-8")
        (folder / f"{name}.email.j2").write_text(EMAIL, encoding="utf-8")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for one test: its own database, plans, templates and outbox."""
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    write_plan(tmp_path)
    return {
        "REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'reminders.sqlite3'}",
        "REMINDERS_PLANS_DIR": str(tmp_path / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(tmp_path / "templates"),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "REMINDERS_CLINIC_NAME": "Lakeside Ortho",
        "COLUMNS": "250",
    }


def run(env: dict[str, str], *args: str) -> Any:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(app, list(args), env=env)


def run_json(env: dict[str, str], *args: str) -> Any:
    """Invoke a command with --json; assert it succeeded and return the parsed output."""
    result = run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def enroll(env: dict[str, str], *extra: str, external_id: str = "p1") -> Any:
    args = ["enroll", "--id", external_id, "--first-name", "Maria", "--phone", "202-555-0101"]
    args += ["--sms-consent"]
    args += ["--timezone", "America/New_York", "--plan", "knee"]
    if "--procedure-date" not in extra:
        args += ["--procedure-date", "2030-03-12"]
    return run(env, *args, *extra)


def timeline(env: dict[str, str], external_id: str = "p1") -> dict[str, Any]:
    data: dict[str, Any] = run_json(env, "timeline", external_id)
    return data


def by_step(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["step_id"]: m for m in data["messages"]}


# -- global behaviour ---------------------------------------------------------------------------


def test_version_is_printed(env: dict[str, str]) -> None:
    result = run(env, "--version")

    assert result.exit_code == 0
    assert result.stdout.startswith("reminders ")


def test_a_bad_setting_is_named_with_exit_2(env: dict[str, str]) -> None:
    result = run({**env, "REMINDERS_API_PORT": "eighty"}, "patients")

    assert result.exit_code == 2
    assert "REMINDERS_API_PORT" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_patient_is_a_one_line_error(env: dict[str, str]) -> None:
    result = run(env, "timeline", "nobody")

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no patient 'nobody'"


def test_db_upgrade_reports_the_revision(env: dict[str, str]) -> None:
    result = run(env, "db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "is at revision 0" in result.stdout


# -- plans check ------------------------------------------------------------------------------


def test_plans_check_passes_a_clean_plan_in_one_line(env: dict[str, str]) -> None:
    result = run(env, "plans", "check")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "checked knee v1: 0 error(s), 0 warning(s)"


def test_plans_check_shows_the_rendered_samples_when_asked(env: dict[str, str]) -> None:
    result = run(env, "plans", "check", "--samples")

    assert result.exit_code == 0, result.output
    assert "Rendered samples" in result.stdout
    assert "GSM-7" in result.stdout


def test_plans_check_reports_file_line_and_field_and_fails(
    env: dict[str, str], tmp_path: Path
) -> None:
    broken = PLAN.replace(
        "    template: day-before\n", "    template: day-before\n    colour: red\n"
    )
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "knee.yaml").write_text(broken, encoding="utf-8")

    result = run(env, "plans", "check", str(bad / "knee.yaml"))

    assert result.exit_code == 1
    line = broken.splitlines().index("    colour: red") + 1
    assert f"{bad / 'knee.yaml'}:{line}: steps[2].colour: unknown key 'colour'" in result.stdout
    assert "1 error(s)" in result.stdout


def test_plans_check_reports_a_missing_template_at_its_step(
    env: dict[str, str], tmp_path: Path
) -> None:
    plan = tmp_path / "plans" / "knee.yaml"
    plan.write_text(PLAN.replace("template: week-1", "template: week-one"), encoding="utf-8")

    result = run(env, "plans", "check")

    assert result.exit_code == 1
    line = next(i for i, text in enumerate(PLAN.splitlines(), 1) if "template: week-1" in text)
    assert f"{plan}:{line}: steps[4].template: sms template missing" in result.stdout


# -- plans preview ----------------------------------------------------------------------------


def test_preview_json_keeps_local_send_times_across_the_dst_change(env: dict[str, str]) -> None:
    rows = run_json(
        env, "plans", "preview", "knee", "--procedure-date", "2026-03-10",
        "--tz", "America/New_York",
    )  # fmt: skip

    steps = {row["step_id"]: row for row in rows}
    assert [row["step_id"] for row in rows] == ["welcome", "day-before", "discharge", "week-1"]
    assert steps["welcome"]["local"] == "2026-02-24 09:00 EST"
    assert steps["welcome"]["utc"] == "2026-02-24T14:00:00Z"
    assert steps["week-1"]["local"] == "2026-03-17 09:00 EDT"
    assert steps["week-1"]["utc"] == "2026-03-17T13:00:00Z"
    assert steps["discharge"]["local"] == "2026-03-10 12:00 EDT"  # 08:00 assumed + 4 h


def test_preview_renders_sample_text_with_the_opt_out_line_only_first(
    env: dict[str, str],
) -> None:
    rows = run_json(
        env, "plans", "preview", "knee", "--procedure-date", "2026-03-10",
        "--tz", "America/New_York", "--attr", "takes_blood_thinners=yes",
    )  # fmt: skip

    steps = {row["step_id"]: row for row in rows}
    assert "blood-thinners" in steps
    assert steps["welcome"]["text"] == (
        "Lakeside Ortho: Hi Alex, your knee arthroscopy is on Tuesday, March 10. "
        "Reply STOP to opt out."
    )
    assert steps["welcome"]["segments"] == 1
    assert steps["welcome"]["encoding"] == "GSM-7"
    assert all("STOP" not in row["text"] for row in rows[1:])


def test_preview_by_email_gives_subjects(env: dict[str, str]) -> None:
    rows = run_json(
        env, "plans", "preview", "knee", "--procedure-date", "2026-03-10",
        "--tz", "America/Chicago", "--channel", "email",
    )  # fmt: skip

    assert rows[0]["channel"] == "email"
    assert rows[0]["subject"] == "knee arthroscopy: welcome"
    assert rows[0]["segments"] is None


def test_preview_table_shows_local_and_utc_times(env: dict[str, str]) -> None:
    result = run(
        env, "plans", "preview", "knee", "--procedure-date", "2026-03-10",
        "--tz", "America/New_York",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "2026-02-24 09:00 EST" in result.stdout
    assert "2026-03-17 09:00 EDT" in result.stdout
    assert "2026-03-17 13:00Z" in result.stdout


def test_preview_of_an_unknown_plan_names_the_plans_there_are(env: dict[str, str]) -> None:
    result = run(env, "plans", "preview", "hip", "--procedure-date", "2026-03-10", "--tz", "UTC")

    assert result.exit_code == 1
    assert "no plan 'hip'" in result.stderr
    assert "plans: knee" in result.stderr


# -- enroll and timeline ---------------------------------------------------------------------


def test_enroll_prints_the_planned_messages_in_local_time(env: dict[str, str]) -> None:
    result = enroll(env)

    assert result.exit_code == 0, result.output
    assert "enrolled p1 on knee: 4 message(s) pending" in result.stdout
    assert "2030-02-26 09:00 EST" in result.stdout  # welcome, 14 days before


def test_enroll_json_reports_created_then_unchanged(env: dict[str, str]) -> None:
    first = run_json(env, *enroll_args())
    again = run_json(env, *enroll_args())

    assert first["created"] is True
    assert first["changes"] == {"add": 4}
    assert again["created"] is False
    assert again["changes"] == {"keep": 4}
    assert len(again["messages"]) == 4


def enroll_args() -> list[str]:
    return [
        "enroll", "--id", "p1", "--first-name", "Maria", "--phone", "202-555-0101",
        "--sms-consent", "--tz", "America/New_York", "--plan", "knee",
        "--procedure-date", "2030-03-12",
    ]  # fmt: skip


def test_timeline_shows_every_step_with_full_contact_and_text(env: dict[str, str]) -> None:
    enroll(env, "--email", "maria@example.org", "--attr", "takes_blood_thinners=yes")

    data = timeline(env)

    assert data["patient"]["phone"] == "+12025550101"
    assert data["patient"]["email"] == "maria@example.org"
    steps = by_step(data)
    assert list(steps) == ["welcome", "blood-thinners", "day-before", "discharge", "week-1"]
    assert steps["welcome"]["local"] == "2030-02-26 09:00 EST"
    assert steps["week-1"]["local"] == "2030-03-19 09:00 EDT"
    assert steps["week-1"]["utc"] == "2030-03-19T13:00:00Z"
    assert steps["welcome"]["status"] == "pending"
    assert steps["welcome"]["text"].endswith("Reply STOP to opt out.")
    assert steps["welcome"]["text_is_preview"] is True
    assert "STOP" not in steps["day-before"]["text"]


def test_timeline_table_shows_the_patient_and_previews(env: dict[str, str]) -> None:
    enroll(env)

    result = run(env, "timeline", "p1")

    assert result.exit_code == 0, result.output
    assert "Maria (p1): +12025550101" in result.stdout
    assert "plan knee v1: procedure 2030-03-12, active" in result.stdout
    assert "(preview) Lakeside Ortho: Hi Maria" in result.stdout


def test_an_invalid_phone_is_refused_naming_the_field_and_nothing_is_stored(
    env: dict[str, str],
) -> None:
    result = run(
        env, "enroll", "--id", "p9", "--first-name", "Sam", "--phone", "555-1234",
        "--sms-consent", "--tz", "America/Chicago", "--plan", "knee",
        "--procedure-date", "2030-03-12",
    )  # fmt: skip

    assert result.exit_code == 2
    assert result.stderr.startswith("error: phone: not a valid phone number")
    assert "Traceback" not in result.output
    assert run_json(env, "patients") == []
    assert run(env, "timeline", "p9").exit_code == 1


def test_every_bad_field_is_named_at_once(env: dict[str, str]) -> None:
    result = run(
        env, "enroll", "--id", "p9", "--first-name", "Sam", "--email", "sam@",
        "--tz", "Mars/Olympus", "--plan", "knee", "--procedure-date", "2030-02-30",
    )  # fmt: skip

    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in errors] == [
        "email",
        "timezone",
        "procedure_date",
    ]


def test_patients_list_masks_phone_and_email(env: dict[str, str]) -> None:
    enroll(env, "--email", "maria@example.org")

    rows = run_json(env, "patients")
    table = run(env, "patients").stdout

    assert rows[0]["phone"] == "+1********01"
    assert rows[0]["email"] == "m***@example.org"
    assert rows[0]["pending"] == 4
    assert "+12025550101" not in table
    assert "maria@example.org" not in table
    assert "+1********01" in table


# -- 80-column terminals ----------------------------------------------------------------------

LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} [A-Z]{3,4}\b")


def narrow(env: dict[str, str], *args: str) -> str:
    """A command's output on an 80-column terminal, checked to fit it."""
    result = run({**env, "COLUMNS": "80"}, *args)
    assert result.exit_code == 0, result.output
    too_wide = [line for line in result.stdout.splitlines() if len(line.rstrip()) > 80]
    assert too_wide == []
    return str(result.stdout)


def test_patients_fit_80_columns_with_whole_headers_and_say_what_is_hidden(
    env: dict[str, str],
) -> None:
    enroll(env, "--email", "maria@example.org")

    output = narrow(env, "patients")

    header = next(line for line in output.splitlines() if "ID" in line)
    shown = re.findall(r"\w+", header)
    hidden = re.findall(r"hidden at this width: (.*) \(see --json\)", output)[0].split(", ")
    every = "ID Name Phone Email Zone Lang Prefers Plan Procedure Status Pending Sent Failed"
    assert sorted(shown + hidden) == sorted(every.split())
    assert {"ID", "Name", "Phone", "Procedure", "Status"} <= set(shown)
    assert "+1********01" in output


def test_messages_fit_80_columns_with_each_date_on_one_line(env: dict[str, str]) -> None:
    enroll(env)

    output = narrow(env, "messages")

    assert len(LOCAL_TIME.findall(output)) == 4
    assert "blood-thinners" not in output  # the patient does not take them
    assert "day-before" in output


def test_timeline_on_80_columns_shows_one_record_per_message(env: dict[str, str]) -> None:
    enroll(env)

    lines = narrow(env, "timeline", "p1").splitlines()

    headings = [line for line in lines if LOCAL_TIME.match(line)]
    assert headings[0] == "2030-02-26 09:00 EST (2030-02-26 14:00Z) · welcome · sms · pending"
    assert len(headings) == 4
    text = lines[lines.index(headings[0]) + 1]
    assert text.startswith("  (preview) Lakeside Ortho: Hi Maria")


def test_enroll_fits_80_columns(env: dict[str, str]) -> None:
    output = narrow(env, *enroll_args())

    assert len(LOCAL_TIME.findall(output)) == 4


# -- import -----------------------------------------------------------------------------------


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROWS = (
    "c1,Ann,202-555-0111,,America/New_York,en,sms,yes,knee,2030-03-12,07:30,yes",
    "c2,Bob,312-555-0112,bob@example.org,America/Chicago,en,sms,yes,knee,2030-03-14,,no",
    "c3,Cat,,cat@example.org,America/Denver,en,email,no,knee,2030-03-19,09:00,",
    "c4,Dan,602-555-0114,,America/Phoenix,,,yes,knee,2030-03-21,,",
)


def test_import_reports_bad_rows_by_line_and_imports_the_good_ones(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "patients.csv",
        GOOD_ROWS[0],
        GOOD_ROWS[1],
        "b1,Eve,202-555-01,,America/New_York,en,sms,yes,knee,2030-03-12,,",
        GOOD_ROWS[2],
        "b2,Fay,202-555-0116,,America/New_York,en,sms,yes,knee,2030-03-12,25:00,",
        GOOD_ROWS[3],
    )

    result = run(env, "import", str(csv_file))

    assert result.exit_code == 1
    assert "rejected: line 4: phone: not a valid phone number" in result.stderr
    assert "rejected: line 6: procedure_time:" in result.stderr
    assert "created 4, updated 0, unchanged 0, rejected 2" in result.stdout
    assert sorted(p["external_id"] for p in run_json(env, "patients")) == [
        "c1",
        "c2",
        "c3",
        "c4",
    ]


def test_import_json_lists_problems_and_counts(env: dict[str, str], tmp_path: Path) -> None:
    csv_file = write_csv(
        tmp_path / "patients.csv",
        GOOD_ROWS[0],
        "b1,Eve,,,America/New_York,en,sms,yes,knee,2030-03-12,,",
    )

    result = run(env, "import", str(csv_file), "--json")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["created"] == 1
    assert data["rejected"] == 1
    assert data["problems"][0]["line"] == 3


def test_reimporting_the_same_file_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "patients.csv", *GOOD_ROWS)
    first = run_json(env, "import", str(csv_file))
    messages_before = run_json(env, "messages")

    again = run_json(env, "import", str(csv_file))

    assert (first["created"], first["rejected"]) == (4, 0)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)
    messages_after = run_json(env, "messages")
    assert len(messages_after) == len(messages_before)
    assert sorted(m["id"] for m in messages_after) == sorted(m["id"] for m in messages_before)


def test_reimport_with_a_new_date_updates_instead_of_duplicating(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_json(env, "import", str(write_csv(tmp_path / "a.csv", GOOD_ROWS[0])))
    moved = GOOD_ROWS[0].replace("2030-03-12", "2030-03-19")

    result = run_json(env, "import", str(write_csv(tmp_path / "b.csv", moved)))

    assert result["updated"] == 1
    steps = by_step(timeline(env, "c1"))
    assert len(steps) == len(timeline(env, "c1")["messages"]) == 5
    assert steps["week-1"]["local"] == "2030-03-26 09:00 EDT"


def test_import_dry_run_stores_nothing(env: dict[str, str], tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "patients.csv", *GOOD_ROWS)

    result = run(env, "import", str(csv_file), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would be created 4" in result.stdout
    assert run_json(env, "patients") == []


def test_import_refuses_a_header_with_an_unknown_column(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(HEADER.replace("timezone", "time_zone") + "\n" + GOOD_ROWS[0] + "\n")

    result = run(env, "import", str(csv_file))

    assert result.exit_code == 2
    assert "error: line 1: timezone: required column is missing" in result.stderr
    assert "error: line 1: time_zone: unknown column" in result.stderr
    assert run_json(env, "patients") == []


def test_the_example_csv_imports_cleanly_against_the_repository_plans(
    env: dict[str, str],
) -> None:
    repo = Path(__file__).resolve().parents[1]
    repo_env = {
        **env,
        "REMINDERS_PLANS_DIR": str(repo / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(repo / "templates"),
    }

    result = run(repo_env, "import", str(repo / "examples" / "patients.csv"), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.stdout


# -- sending, rescheduling, cancelling --------------------------------------------------------


def outbox(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_send_due_sends_what_is_due_to_the_console_outbox(
    env: dict[str, str], tmp_path: Path
) -> None:
    with freeze_time("2026-02-01 12:00:00"):
        enroll(env, "--procedure-date", "2026-03-10")
    with freeze_time("2026-02-24 14:30:00"):  # welcome was due at 09:00 EST = 14:00Z
        result = run(env, "send-due", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outcomes"] == {"sent": 1}
    lines = outbox(tmp_path)
    assert [(line["channel"], line["to"]) for line in lines] == [("sms", "+12025550101")]
    assert lines[0]["body"].startswith("Lakeside Ortho: Hi Maria, your knee arthroscopy is on")
    assert lines[0]["body"].endswith("Reply STOP to opt out.")


def test_send_due_table_counts_outcomes(env: dict[str, str]) -> None:
    with freeze_time("2026-02-01 12:00:00"):
        enroll(env, "--procedure-date", "2026-03-10")
    with freeze_time("2026-02-24 14:30:00"):
        result = run(env, "send-due")

    assert result.exit_code == 0, result.output
    assert "1 message(s) handled: sent 1" in result.stdout
    assert "next due: 2026-03-09 20:00Z" in result.stdout


def test_reschedule_moves_pending_messages_and_keeps_sent_ones(env: dict[str, str]) -> None:
    with freeze_time("2026-02-01 12:00:00"):
        enroll(env, "--procedure-date", "2026-03-10")
    with freeze_time("2026-02-24 14:30:00"):
        run(env, "send-due")
        result = run(env, "reschedule", "p1", "--procedure-date", "2026-03-17")
        data = timeline(env)

    assert result.exit_code == 0, result.output
    assert "day-before" in result.stdout and "move" in result.stdout
    steps = by_step(data)
    assert len(data["messages"]) == 4
    assert steps["welcome"]["status"] == "sent"
    assert steps["welcome"]["local"] == "2026-02-24 09:00 EST"
    assert steps["welcome"]["text_is_preview"] is False
    assert steps["day-before"]["local"] == "2026-03-16 16:00 EDT"
    assert steps["week-1"]["local"] == "2026-03-24 09:00 EDT"
    assert data["enrollments"][0]["procedure_date"] == "2026-03-17"


def test_reschedule_to_a_near_date_names_the_steps_skipped_as_past(env: dict[str, str]) -> None:
    with freeze_time("2026-02-01 12:00:00"):
        enroll(env, "--procedure-date", "2026-03-10")
    with freeze_time("2026-03-01 15:00:00"):  # 10:00 in New York
        result = run(env, "reschedule", "p1", "--procedure-date", "2026-03-05")
        steps = by_step(timeline(env))

    assert result.exit_code == 0, result.output
    assert "skipped as already past: welcome" in result.stdout
    assert "messages: skip 1, move 3 (sent ones stay as they were)" in result.stdout
    assert steps["welcome"]["status"] == "skipped"
    assert (
        steps["welcome"]["status_reason"]
        == "its send window ended before it was scheduled (on 2026-03-01)"
    )
    assert steps["day-before"]["status"] == "pending"
    assert steps["day-before"]["local"] == "2026-03-04 16:00 EST"


def test_enrolling_after_a_step_is_past_records_it_as_skipped_at_once(
    env: dict[str, str],
) -> None:
    with freeze_time("2030-03-01 15:00:00"):
        first = run_json(env, *enroll_args())

    assert first["changes"] == {"skip": 1, "add": 3}
    welcome = by_step(first)["welcome"]
    assert (welcome["status"], welcome["status_reason"]) == (
        "skipped",
        "its send window ended before it was scheduled (on 2030-03-01)",
    )


def test_cancel_cancels_every_pending_message_with_the_reason(env: dict[str, str]) -> None:
    enroll(env)

    result = run(env, "cancel", "p1", "--reason", "procedure called off")

    assert result.exit_code == 0, result.output
    assert "4 pending message(s) will not be sent" in result.stdout
    statuses = {(m["status"], m["status_reason"]) for m in timeline(env)["messages"]}
    assert statuses == {("cancelled", "procedure called off")}
    assert run_json(env, "messages", "--status", "pending") == []


def test_messages_filters_by_status_and_since(env: dict[str, str]) -> None:
    enroll(env)
    run(env, "cancel", "p1")
    enroll(env, external_id="p2")

    assert len(run_json(env, "messages", "--status", "cancelled")) == 4
    assert len(run_json(env, "messages", "--status", "pending", "--since", "1h")) == 4
    assert run_json(env, "messages", "--since", "2999-01-01T00:00") == []
    assert run(env, "messages", "--status", "lost").exit_code == 2


def test_patients_and_messages_print_how_to_get_the_next_page(env: dict[str, str]) -> None:
    enroll(env)
    enroll(env, external_id="p2")

    patients = run(env, "patients", "--limit", "1")
    messages = run(env, "messages", "--limit", "5")
    cursor = messages.stdout.split("--before ")[1].split()[0]

    assert "More: reminders patients --after p1" in patients.stdout
    assert [p["external_id"] for p in run_json(env, "patients", "--after", "p1")] == ["p2"]
    assert len(run_json(env, "messages", "--before", cursor)) == 3
    assert run(env, "messages", "--before", "soon").exit_code == 2


# -- plans apply ------------------------------------------------------------------------------


def test_plans_apply_shows_changes_and_applies_only_with_yes(
    env: dict[str, str], tmp_path: Path
) -> None:
    enroll(env)
    version_2 = PLAN.replace("version: 1", "version: 2").replace(
        "offset: {weeks: 1}", 'offset: {weeks: 1, at: "10:00"}'
    )
    (tmp_path / "plans" / "knee.yaml").write_text(version_2, encoding="utf-8")

    dry = run(env, "plans", "apply", "knee")

    assert dry.exit_code == 0, dry.output
    assert "week-1" in dry.stdout
    assert "2030-03-19 09:00 EDT" in dry.stdout and "2030-03-19 10:00 EDT" in dry.stdout
    assert "3 message(s) keep their time, now v2" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert by_step(timeline(env))["week-1"]["local"] == "2030-03-19 09:00 EDT"

    applied = run(env, "plans", "apply", "knee", "--yes")

    assert applied.exit_code == 0, applied.output
    assert "applied knee v2 to 1 enrollment(s)" in applied.stdout
    assert by_step(timeline(env))["week-1"]["local"] == "2030-03-19 10:00 EDT"
    assert timeline(env)["enrollments"][0]["plan_version"] == 2
    again = run_json(env, "plans", "apply", "knee")
    assert again["changes"] == []


def test_plans_apply_json_lists_moves(env: dict[str, str], tmp_path: Path) -> None:
    enroll(env)
    (tmp_path / "plans" / "knee.yaml").write_text(
        PLAN.replace('offset: {days: -1, at: "16:00"}', 'offset: {days: -2, at: "16:00"}'),
        encoding="utf-8",
    )

    data = run_json(env, "plans", "apply", "knee")

    assert data["applied"] is False
    [change] = data["changes"]
    assert change["step_id"] == "day-before"
    assert change["action"] == "move"
    assert change["old_local"] == "2030-03-11T16:00:00-04:00"
    assert change["new_local"] == "2030-03-10T16:00:00-04:00"


def test_plans_check_warns_when_timing_changed_but_the_version_did_not(
    env: dict[str, str], tmp_path: Path
) -> None:
    enroll(env)
    plan = tmp_path / "plans" / "knee.yaml"
    plan.write_text(PLAN.replace("offset: {weeks: 1}", "offset: {weeks: 2}"), encoding="utf-8")

    result = run(env, "plans", "check")

    assert result.exit_code == 0, result.output
    assert (
        f"{plan}:3: version: warning: steps or timing differ from v1 as applied to 1 enrolled "
        "patient(s), but the version is still 1: raise it, then `reminders plans apply knee`"
    ) in result.stdout
    version_2 = PLAN.replace("offset: {weeks: 1}", "offset: {weeks: 2}")
    plan.write_text(version_2.replace("version: 1", "version: 2"), encoding="utf-8")
    assert "0 warning(s)" in run(env, "plans", "check").stdout


def test_plans_check_is_quiet_about_wording_and_an_unchanged_plan(
    env: dict[str, str], tmp_path: Path
) -> None:
    enroll(env)
    plan = tmp_path / "plans" / "knee.yaml"
    plan.write_text(PLAN.replace("name: Knee arthroscopy", "name: Knee scope"), encoding="utf-8")

    assert "0 warning(s)" in run(env, "plans", "check").stdout


def test_plans_apply_of_an_older_version_warns_and_asks(
    env: dict[str, str], tmp_path: Path
) -> None:
    plan = tmp_path / "plans" / "knee.yaml"
    plan.write_text(PLAN.replace("version: 1", "version: 2"), encoding="utf-8")
    enroll(env)
    plan.write_text(PLAN.replace("offset: {weeks: 1}", "offset: {weeks: 2}"), encoding="utf-8")

    check = run(env, "plans", "check")
    dry = run(env, "plans", "apply", "knee")  # no terminal to answer: nothing is applied
    data = run_json(env, "plans", "apply", "knee")

    assert "1 enrolled patient(s) follow v2, newer than this file's v1" in check.stdout
    assert "warning: 1 enrolled patient(s) follow v2, newer than this file's v1" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert timeline(env)["enrollments"][0]["plan_version"] == 2
    assert data["warnings"] == [
        "1 enrolled patient(s) follow v2, newer than this file's v1; `plans apply` would move "
        "them back (it asks first)"
    ]


# -- store behaviour seen through the CLI -----------------------------------------------------


def test_reenrolling_does_not_duplicate_steps_skipped_at_planning(
    env: dict[str, str], tmp_path: Path
) -> None:
    sms_only = PLAN.replace("    template: week-1\n", "    template: week-1\n    channel: sms\n")
    (tmp_path / "plans" / "knee.yaml").write_text(sms_only, encoding="utf-8")
    csv_file = write_csv(tmp_path / "patients.csv", GOOD_ROWS[2])  # email only
    run_json(env, "import", str(csv_file))

    again = run_json(env, "import", str(csv_file))

    assert again["unchanged"] == 1
    assert len(timeline(env, "c3")["messages"]) == 4


def test_json_output_speaks_the_http_apis_field_names(env: dict[str, str]) -> None:
    assert enroll(env).exit_code == 0

    message = timeline(env)["messages"][0]
    patient = run_json(env, "patients")[0]

    api_names = set(MessageOut.model_fields) | set(PatientOut.model_fields)
    assert {"plan_id", "step_id", "status_reason"} <= message.keys() & api_names
    assert "plan_id" in patient
    assert not {"plan", "step", "reason"} & (message.keys() | patient.keys())


# -- a number the provider refused -------------------------------------------------------------


def refuse_number(env: dict[str, str], external_id: str) -> None:
    """What dispatch does when the provider says the patient's number cannot get SMS."""
    storage = Storage.open(env["REMINDERS_DATABASE_URL"])
    catalog = PlanCatalog(Path(env["REMINDERS_PLANS_DIR"]), Path(env["REMINDERS_TEMPLATES_DIR"]))
    try:
        state = storage.patients.patient_states([external_id])[external_id]
        audit = AuditTrail(storage.access, Actor.system("test"))
        cause = StopCause(SmsStopKind.NUMBER_UNUSABLE, StopVia.SEND_ERROR, "21211", "not valid")
        SmsConsentService(storage, catalog, audit).stop(cause, patient_ids=[state.patient_id])
    finally:
        storage.close()


def sms_statuses(env: dict[str, str], external_id: str) -> set[tuple[str, str | None]]:
    messages = timeline(env, external_id)["messages"]
    return {(m["status"], m["status_reason"]) for m in messages if m["channel"] == "sms"}


def enroll_with_phone(env: dict[str, str], phone: str) -> Any:
    return run(
        env,
        *["enroll", "--id", "p1", "--first-name", "Maria", "--phone", phone, "--sms-consent"],
        *["--tz", "America/New_York", "--plan", "knee", "--procedure-date", "2030-03-12"],
    )


def test_reenrolling_with_a_new_phone_through_the_cli_lifts_a_refused_number(
    env: dict[str, str],
) -> None:
    assert enroll_with_phone(env, "202-555-0101").exit_code == 0
    refuse_number(env, "p1")

    assert enroll_with_phone(env, "202-555-0199").exit_code == 0

    assert sms_statuses(env, "p1") == {("pending", None)}


def test_reenrolling_with_the_refused_phone_keeps_sms_skipped(env: dict[str, str]) -> None:
    assert enroll_with_phone(env, "202-555-0101").exit_code == 0
    refuse_number(env, "p1")

    assert enroll_with_phone(env, "202-555-0101").exit_code == 0

    day = datetime.now(UTC).date()
    reason = f"no valid phone number since {day}: not valid, per send error"
    assert sms_statuses(env, "p1") == {("skipped", reason)}


def test_reimporting_a_row_with_a_new_phone_lifts_a_refused_number(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_json(env, "import", str(write_csv(tmp_path / "first.csv", GOOD_ROWS[0])))
    refuse_number(env, "c1")

    renumbered = GOOD_ROWS[0].replace("202-555-0111", "202-555-0199")
    run_json(env, "import", str(write_csv(tmp_path / "new.csv", renumbered)))

    assert sms_statuses(env, "c1") == {("pending", None)}


# -- serve ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_prints_a_banner_and_stops_cleanly_on_sigterm(env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.cli", "serve", "--no-api"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        banner.append(line)
        if "api:" in line:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)

    output = "".join(banner) + rest
    assert process.returncode == 0, output
    assert banner[0].strip() == "reminders service"
    assert len(banner) == 6, banner  # a short banner: the samples table is `plans check --samples`
    assert "plans:    knee v1" in output
    assert "channels: sms via console" in output
    assert "stopped" in output


@pytest.mark.slow
def test_serve_answers_http_and_stops_cleanly_on_ctrl_c(env: dict[str, str]) -> None:
    pytest.importorskip("reminders.api.app")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = None
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert status == 401, output  # the API answers; its schema needs a key
    assert f"api:      http://127.0.0.1:{port}" in output
    assert process.returncode == 0, output
    assert output.rstrip().endswith("stopped")


# -- api keys ---------------------------------------------------------------------------------


def test_api_keys_are_shown_once_listed_by_prefix_and_revocable(env: dict[str, str]) -> None:
    created = run(env, "api-keys", "create", "front desk", "--scope", "staff")

    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    [record] = run_json(env, "api-keys", "list")
    assert record["name"] == "front desk"
    assert key.startswith(record["prefix"])
    assert key not in run(env, "api-keys", "list").stdout

    revoked = run(env, "api-keys", "revoke", record["prefix"])

    assert revoked.exit_code == 0, revoked.output
    assert run_json(env, "api-keys", "list")[0]["revoked_at"] is not None
    assert run(env, "api-keys", "revoke", "rk_nope").exit_code == 1


def test_real_sending_refuses_to_start_without_the_clinics_name_and_phone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMINDERS_DATABASE_URL", f"sqlite:///{tmp_path / 'r.sqlite3'}")
    monkeypatch.setenv("REMINDERS_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("REMINDERS_TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("REMINDERS_TWILIO_FROM_NUMBER", "+12025550100")
    result = CliRunner().invoke(app, ["send-due"])
    assert result.exit_code != 0
    assert "REMINDERS_CLINIC_NAME" in result.output
    assert "REMINDERS_CLINIC_PHONE" in result.output
    assert "Traceback" not in result.output
