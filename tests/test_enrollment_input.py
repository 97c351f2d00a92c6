"""One typed enrollment input: the same checks and the same words through the CLI, a CSV file,
the HTTP API and the scheduling feed, and a language the plan lacks kept as a warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import World
from entry_points import cli_env
from feed_fixtures import Feed, open_feed, siu
from test_cli import enroll, run, run_json, write_csv
from test_fhir_appointments import MAPPING as FHIR_MAPPING
from test_fhir_appointments import Client as FhirClient
from test_fhir_appointments import as_json, built_appointment, issues

from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import EnrollmentError

FALLBACK = "language 'fr' is not one of plan knee's (en); messages go in its default, 'en'"
GOOD = {
    "external_id": "p1",
    "first_name": "Ana",
    "phone": "202-555-0101",
    "timezone": "America/New_York",
    "plan": "knee",
    "procedure_date": "2030-03-12",
}


def problems(**changes: object) -> list[tuple[str, str]]:
    with pytest.raises(EnrollmentError) as caught:
        read_input({**GOOD, **changes})
    return [(p.field, p.message) for p in caught.value.problems]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(tmp_path, monkeypatch)


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    with open_feed(tmp_path, f"sqlite:///{tmp_path / 'feed.sqlite3'}") as opened:
        yield opened


# -- the input itself -----------------------------------------------------------------------


def test_a_well_formed_input_is_typed_with_its_defaults() -> None:
    item = read_input(GOOD)

    assert isinstance(item, EnrollmentInput)
    assert (item.preferred_channel, item.language, item.procedure_time) == ("sms", None, None)
    assert str(item.procedure_date) == "2030-03-12"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"first_name": "Ana\x00"}, [("first_name", "must not contain NUL characters")]),
        (
            {"external_id": "x" * 129},
            [("external_id", "at most 128 characters")],
        ),
        ({"language": "english-united-states"}, [("language", "at most 16 characters")]),
        (
            {"language": "../../../etc"},
            [("language", "expected a language code such as en, es or pt-BR")],
        ),
        ({"timezone": "EST"}, [("timezone", "EST has no daylight saving; use America/New_York")]),
        (
            {"procedure_date": "2030-3-9"},
            [("procedure_date", "expected YYYY-MM-DD, e.g. 2027-03-09")],
        ),
        ({"procedure_time": "7.30pm"}, [("procedure_time", "expected HH:MM, 24-hour, e.g. 07:30")]),
        ({"preferred_channel": "fax"}, [("preferred_channel", "expected sms or email")]),
        ({"phone": None}, [("contact", "give a phone number or an email address")]),
    ],
)
def test_bad_values_are_refused_with_how_to_fix_them(
    changes: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert problems(**changes) == expected


def test_a_name_that_a_spreadsheet_reads_as_a_formula_is_refused() -> None:
    [(field, message)] = problems(first_name='=HYPERLINK("http://x","Ana")')

    assert field == "first_name"
    assert message.startswith("starts with '=', which spreadsheets read as a formula")


def test_the_csv_row_is_named_in_the_error() -> None:
    with pytest.raises(EnrollmentError) as caught:
        read_input({**GOOD, "timezone": "Nowhere/Town"}, row=7)

    assert caught.value.row == 7
    assert str(caught.value).startswith("line 7: timezone: unknown IANA time zone")


# -- every entry point ----------------------------------------------------------------------


def test_cli_a_language_the_plan_lacks_falls_back_with_a_warning_kept_on_the_enrollment(
    env: dict[str, str],
) -> None:
    result = enroll(env, "--language", "fr")

    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"warning: {FALLBACK}"
    again = run_json(env, "enroll", *enroll_args(), "--language", "fr")
    assert again["warnings"] == [FALLBACK]
    assert run_json(env, "timeline", "p1")["enrollments"][0]["warnings"] == [FALLBACK]
    assert f"warning: {FALLBACK}" in run(env, "timeline", "p1").stdout


def enroll_args() -> list[str]:
    return [
        *("--id", "p1", "--first-name", "Maria", "--phone", "202-555-0101", "--sms-consent"),
        *("--timezone", "America/New_York", "--plan", "knee", "--procedure-date", "2030-03-12"),
    ]


def test_cli_a_nul_byte_and_a_malformed_language_are_refused_and_nothing_is_stored(
    env: dict[str, str],
) -> None:
    result = run(
        env, "enroll", *enroll_args()[:3], "Ma\x00ria", *enroll_args()[4:], "--language", "en-"
    )

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: first_name: must not contain NUL characters",
        "error: language: expected a language code such as en, es or pt-BR",
    ]
    assert run(env, "timeline", "p1").exit_code == 1


def test_csv_bad_values_reject_their_row_and_the_others_land_with_their_warning(
    env: dict[str, str], tmp_path: Path
) -> None:
    rows = [
        "ok1,Ann,202-555-0111,,America/New_York,fr,,yes,knee,2030-03-12,,",
        "nul,Bo\x00b,202-555-0112,,America/New_York,en,,yes,knee,2030-03-12,,",
        "long,Cat,202-555-0113,,America/New_York,english-united-states,,yes,knee,2030-03-12,,",
        "path,Dan,202-555-0114,,America/New_York,../../../etc,,yes,knee,2030-03-12,,",
        "ok2,Eve,202-555-0115,,America/Chicago,en,,yes,knee,2030-03-12,,",
    ]
    csv_file = write_csv(tmp_path / "patients.csv", *rows)

    result = run(env, "import", str(csv_file), "--json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["created"], report["rejected"]) == (2, 3)
    assert [(p["line"], p["field"], p["message"]) for p in report["problems"]] == [
        (3, "first_name", "must not contain NUL characters"),
        (4, "language", "at most 16 characters"),
        (5, "language", "expected a language code such as en, es or pt-BR"),
    ]
    assert report["warnings"] == [{"line": 2, "message": FALLBACK}]
    assert run(env, "timeline", "ok2").exit_code == 0


def test_api_a_language_the_plan_lacks_is_enrolled_with_the_warning(world: World) -> None:
    response = world.enroll("ana", "+12025550143", language="fr")

    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == [FALLBACK]


def test_api_a_malformed_language_is_refused_with_the_same_words(world: World) -> None:
    response = world.enroll("ana", "+12025550143", language="../../../etc")

    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "language", "message": "expected a language code such as en, es or pt-BR"}
    ]


def test_hl7_a_name_that_is_a_formula_is_refused_with_the_field_it_came_from(feed: Feed) -> None:
    reply = feed.handler.handle(siu(first_name="=cmd"))

    assert reply.ack_code == "AE"
    assert reply.detail.startswith("PID-5: starts with '=', which spreadsheets read as a formula")
    assert feed.timeline("MRN1") == []


def test_hl7_a_language_the_plan_lacks_is_enrolled_with_the_warning(feed: Feed) -> None:
    feed.handler.handle(siu(language="FR^French^ISO6391"))

    assert feed.enrollment("MRN1")["warnings"] == (FALLBACK.replace("knee", "demo"),)


# -- how-to-fix words on the CLI's own options -------------------------------------------------


def test_cli_reschedule_says_how_to_write_a_date_and_a_time(env: dict[str, str]) -> None:
    assert enroll(env).exit_code == 0

    bad_date = run(env, "reschedule", "p1", "--procedure-date", "03/14/2030")
    bad_time = run(
        env, "reschedule", "p1", "--procedure-date", "2030-03-14", "--procedure-time", "7pm"
    )

    assert bad_date.exit_code == bad_time.exit_code == 2
    assert "expected YYYY-MM-DD, e.g. 2027-03-09" in bad_date.stderr
    assert "expected HH:MM, 24-hour, e.g. 07:30" in bad_time.stderr


def test_cli_preview_refuses_an_abbreviated_zone_with_the_one_to_use(env: dict[str, str]) -> None:
    result = run(
        env, "plans", "preview", "knee", "--procedure-date", "2030-03-12", "--timezone", "EST"
    )

    assert result.exit_code == 2
    assert "EST has no daylight saving; use America/New_York" in result.stderr


def test_cli_enroll_refuses_an_abbreviated_zone_with_the_one_to_use(env: dict[str, str]) -> None:
    args = enroll_args()
    args[args.index("America/New_York")] = "EST"

    result = run(env, "enroll", *args)

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: timezone: EST has no daylight saving; use America/New_York"
    )


@pytest.mark.parametrize(
    ("first_name", "ack", "detail"),
    [
        ("An\x00a", "AR", "a NUL character is not allowed in an HL7 message"),
        ("A" * 129, "AE", "PID-5: at most 128 characters"),
    ],
)
def test_hl7_values_the_database_cannot_hold_are_refused_with_the_field(
    feed: Feed, first_name: str, ack: str, detail: str
) -> None:
    reply = feed.handler.handle(siu(first_name=first_name))

    assert (reply.ack_code, reply.detail) == (ack, detail)
    assert feed.timeline("MRN1") == []


@pytest.fixture
def fhir_feed(tmp_path: Path) -> Iterator[Feed]:
    url = f"sqlite:///{tmp_path / 'fhir.sqlite3'}"
    with open_feed(tmp_path, url, FHIR_MAPPING) as opened:
        yield opened


def test_fhir_a_name_that_is_a_formula_is_refused_with_the_field_it_came_from(
    fhir_feed: Feed,
) -> None:
    booking = as_json(built_appointment())
    booking["contained"][0]["name"][0]["given"] = ["=cmd"]

    response = FhirClient(fhir_feed).post(booking)

    assert response.status_code == 422, response.text
    (issue,) = issues(response)
    assert issue["diagnostics"].startswith(
        "Patient.name: starts with '=', which spreadsheets read as a formula"
    )
    assert fhir_feed.timeline("MRN-77") == []


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_an_attribute_that_is_not_a_finite_number_is_refused(number: float) -> None:
    # PostgreSQL's JSON cannot hold NaN or Infinity: refused here, whatever the plan declares.
    assert problems(attributes={"pain": number})[0][0].startswith("attributes.pain")
