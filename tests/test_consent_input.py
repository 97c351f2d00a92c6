"""Consent to texts is explicit: with a phone number, staff say yes or no (or the plan states a
default), through the CLI, a CSV file, the HTTP API and the scheduling feed alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import World
from entry_points import cli_env
from feed_fixtures import MAPPING, Feed, open_feed, siu
from test_cli import PLAN, run, write_csv, write_plan

from reminders.enrollment import CONSENT_REQUIRED

NEEDED = f"sms_consent: {CONSENT_REQUIRED}"
ENROLL = [
    *("enroll", "--id", "p1", "--first-name", "Maria", "--phone", "202-555-0101"),
    *("--timezone", "America/New_York", "--plan", "knee", "--procedure-date", "2030-03-12"),
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(tmp_path, monkeypatch)


def consent_of(env: dict[str, str], external_id: str) -> bool:
    patient = json.loads(run(env, "timeline", external_id, "--json").stdout)["patient"]
    return bool(patient["sms_consent"])


def test_cli_a_phone_without_an_answer_is_refused(env: dict[str, str]) -> None:
    result = run(env, *ENROLL)

    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {NEEDED}"
    assert run(env, "timeline", "p1").exit_code == 1


@pytest.mark.parametrize(
    ("flag", "recorded"), [("--sms-consent", True), ("--no-sms-consent", False)]
)
def test_cli_records_the_answer_given(env: dict[str, str], flag: str, recorded: bool) -> None:
    assert run(env, *ENROLL, flag).exit_code == 0

    assert consent_of(env, "p1") is recorded


def test_cli_an_email_only_patient_needs_no_answer(env: dict[str, str]) -> None:
    args = [a for a in ENROLL if a not in ("--phone", "202-555-0101")]

    result = run(env, *args, "--email", "maria@example.org")

    assert result.exit_code == 0, result.output
    assert consent_of(env, "p1") is False


def test_csv_a_row_with_a_phone_and_no_answer_is_rejected_and_the_others_land(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "patients.csv",
        "c1,Ann,202-555-0111,,America/New_York,en,sms,,knee,2030-03-12,07:30,yes",
        "c2,Bob,312-555-0112,,America/Chicago,en,sms,no,knee,2030-03-14,,no",
        "c3,Cat,312-555-0113,,America/Chicago,en,sms,perhaps,knee,2030-03-14,,no",
    )

    result = run(env, "import", str(csv_file), "--json")

    report = json.loads(result.stdout)
    assert [(p["line"], p["field"], p["message"]) for p in report["problems"]] == [
        (2, "sms_consent", CONSENT_REQUIRED),
        (4, "sms_consent", "expected yes or no"),
    ]
    assert report["created"] == 1
    assert consent_of(env, "c2") is False


def test_csv_a_plan_that_states_a_default_records_it(env: dict[str, str], tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN.replace("defaults:\n", "defaults:\n  sms_consent: true\n"))
    csv_file = write_csv(
        tmp_path / "patients.csv",
        "c1,Ann,202-555-0111,,America/New_York,en,sms,,knee,2030-03-12,07:30,yes",
    )

    result = run(env, "import", str(csv_file))

    assert result.exit_code == 0, result.output
    assert consent_of(env, "c1") is True


def test_api_a_phone_without_sms_consent_is_422(world: World) -> None:
    body = {
        "external_id": "ana",
        "first_name": "Ana",
        "phone": "+12025550143",
        "timezone": "UTC",
        "plan": "knee",
        "procedure_date": "2026-03-02",
    }

    response = world.client.post("/v1/enrollments", json=body, headers=world.headers)

    assert response.status_code == 422
    assert response.json()["fields"] == [{"field": "sms_consent", "message": CONSENT_REQUIRED}]


def test_api_records_a_no(world: World) -> None:
    assert world.enroll("ana", "+12025550143", sms_consent=False).status_code == 201

    messages = world.timeline("ana")["messages"]
    assert messages and all(m["channel"] != "sms" or m["status"] == "skipped" for m in messages)


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    mapping = MAPPING.replace("consent: {sms: granted}", "consent: {sms: if_mobile}")
    with open_feed(tmp_path, f"sqlite:///{tmp_path / 'feed.sqlite3'}", mapping) as opened:
        yield opened


def test_hl7_consent_comes_from_the_mapping_rule_and_is_recorded(feed: Feed) -> None:
    home = "^PRH^PH^^1^312^5550123"

    mobile = feed.handler.handle(siu(control_id="M1"))
    landline = feed.handler.handle(
        siu(control_id="M2", mrn="MRN2", first_name="Bea", phone=home, appointment="A2")
    )

    assert (mobile.ack_code, landline.ack_code) == ("AA", "AA"), landline.detail
    assert feed.enrollment("MRN1")["sms_consent"] is True
    assert feed.enrollment("MRN2")["sms_consent"] is False
