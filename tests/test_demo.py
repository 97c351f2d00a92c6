"""`reminders demo`: made-up patients whose first message falls due within a minute at any hour,
through the real rules, on the console outbox only; `--clean` removes only them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reminders.cli.main import app
from reminders.demo import MARGIN, demo_timing
from reminders.plans.loader import load_plan

ROOT = Path(__file__).resolve().parents[1]
MILD = load_plan(ROOT / "plans" / "mild.yaml").plan

# Every hour of a day, a minute before midnight, and both DST changes (US and EU).
INSTANTS = [f"2026-06-15T{hour:02d}:17:42Z" for hour in range(24)] + [
    "2026-12-31T23:59:59Z",
    "2026-03-08T06:59:30Z",
    "2026-10-25T00:59:58Z",
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The repository's plans on a fresh SQLite file, with the console channels."""
    monkeypatch.chdir(tmp_path)
    return {
        "REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'reminders.sqlite3'}",
        "REMINDERS_PLANS_DIR": str(ROOT / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(ROOT / "templates"),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "COLUMNS": "100",
    }


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def messages(env: dict[str, str], external_id: str) -> dict[str, dict[str, Any]]:
    result = run(env, "timeline", external_id, "--json")
    assert result.exit_code == 0, result.output
    return {m["step_id"]: m for m in json.loads(result.stdout)["messages"]}


def outbox(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["REMINDERS_OUTBOX_FILE"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("instant", INSTANTS)
def test_the_demo_message_goes_out_within_a_minute_at_any_hour(
    env: dict[str, str], instant: str
) -> None:
    started = datetime.fromisoformat(instant)
    with freeze_time(started) as clock:
        result = run(env, "demo")
        assert result.exit_code == 0, result.output
        sms = messages(env, "DEMO-1")["discharge"]
        email = messages(env, "DEMO-2")["discharge"]
        due = datetime.fromisoformat(sms["utc"])
        assert timedelta(0) < due - started <= timedelta(seconds=61)
        assert email["utc"] == sms["utc"]

        clock.move_to(due - timedelta(seconds=1))
        assert "0 message(s) handled" in run(env, "send-due").stdout
        clock.move_to(due + timedelta(seconds=1))
        sent = run(env, "send-due")

    assert "2 message(s) handled: sent 2" in sent.stdout, sent.output
    assert sorted((m["channel"], m["to"]) for m in outbox(env)) == [
        ("email", "sam.demo@example.com"),
        ("sms", "+12025550143"),
    ]
    assert f"falls due at {due:%Y-%m-%d %H:%M}Z" in result.stdout


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    now=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    )
)
def test_the_demo_times_its_step_in_the_daytime_just_ahead(now: datetime) -> None:
    step, zone, start = demo_timing(MILD, now)

    assert step.offset.hours_after_procedure is not None
    due = start + timedelta(hours=step.offset.hours_after_procedure)
    assert timedelta(0) < due - now <= timedelta(seconds=61)
    local = due.astimezone(ZoneInfo(zone))
    quiet = MILD.defaults.quiet_hours
    assert not any(quiet.contains((local + s).time()) for s in (-MARGIN, timedelta(0), MARGIN))
    assert start.second == 0 and start.microsecond == 0  # a procedure time staff could type


def test_the_demo_patients_are_marked_as_made_up(env: dict[str, str]) -> None:
    run(env, "demo")

    result = run(env, "patients", "--json")
    rows = {row["external_id"]: row for row in json.loads(result.stdout)}

    assert sorted(rows) == ["DEMO-1", "DEMO-2"]
    assert all(row["first_name"].endswith("(demo)") for row in rows.values())


def test_the_demo_refuses_to_run_with_a_live_channel(env: dict[str, str]) -> None:
    live = {
        **env,
        "REMINDERS_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "REMINDERS_TWILIO_AUTH_TOKEN": "token",
        "REMINDERS_TWILIO_FROM_NUMBER": "+12025550100",
        "REMINDERS_CLINIC_NAME": "Lakeside Ortho",
        "REMINDERS_CLINIC_PHONE": "+12025550199",
    }

    result = run(live, "demo")

    assert result.exit_code == 1
    assert "the demo sends to the console outbox only, and sms would go to a real provider" in (
        result.stderr
    )
    assert json.loads(run(env, "patients", "--json").stdout) == []


def test_clean_removes_the_demo_patients_and_nobody_else(env: dict[str, str]) -> None:
    run(env, "demo")
    real = run(
        env, "enroll", "--id", "p1", "--first-name", "Maria", "--phone", "202-555-0101",
        "--sms-consent", "--tz", "America/New_York", "--plan", "mild",
        "--procedure-date", "2030-03-12",
    )  # fmt: skip
    assert real.exit_code == 0, real.output

    result = run(env, "demo", "--clean")

    assert result.stdout.strip() == "removed DEMO-1, DEMO-2"
    rows = json.loads(run(env, "patients", "--json").stdout)
    assert [row["external_id"] for row in rows] == ["p1"]
    assert json.loads(run(env, "messages", "--json").stdout)  # p1's messages stay
    assert all(m["external_id"] == "p1" for m in json.loads(run(env, "messages", "--json").stdout))


def test_the_demo_leaves_a_real_patient_with_a_demo_id_alone(env: dict[str, str]) -> None:
    real = run(
        env, "enroll", "--id", "DEMO-2", "--first-name", "Maria", "--phone", "202-555-0101",
        "--sms-consent", "--tz", "America/New_York", "--plan", "mild",
        "--procedure-date", "2030-03-12",
    )  # fmt: skip
    assert real.exit_code == 0, real.output

    result = run(env, "demo")
    cleaned = run(env, "demo", "--clean")

    assert result.exit_code == 1
    assert "DEMO-2: a patient who is not a demo patient has this id" in result.stderr
    assert cleaned.stdout.strip() == "no demo patients to remove"
    assert [row["external_id"] for row in json.loads(run(env, "patients", "--json").stdout)] == [
        "DEMO-2"
    ]


def test_running_the_demo_again_sends_a_new_message(env: dict[str, str]) -> None:
    with freeze_time("2026-06-15T14:00:00Z") as clock:
        run(env, "demo")
        clock.move_to("2026-06-15T14:01:01Z")
        run(env, "send-due")
        clock.move_to("2026-06-15T14:30:00Z")
        again = run(env, "demo")
        clock.move_to("2026-06-15T14:31:01Z")
        sent = run(env, "send-due")

    assert again.exit_code == 0, again.output
    assert "2 message(s) handled: sent 2" in sent.stdout
    assert messages(env, "DEMO-1")["discharge"]["status"] == "sent"
    assert len(outbox(env)) == 4
