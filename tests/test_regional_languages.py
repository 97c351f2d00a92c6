"""A patient whose language is written with a region (es-MX, es-US: the well-formed tags every
entry point accepts) gets the plan's Spanish, through the API, the console, the CLI and a CSV
file as through FHIR, and no warning; the service's own replies are in Spanish too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import api_fixtures
import pytest
from api_fixtures import ANA, BEN, WELCOME_AT, twiml_message
from console_fixtures import ConsoleWorld, console_world, csrf_token
from feed_fixtures import open_feed, siu
from sqlalchemy import select
from test_cli import run, run_json
from test_schedule import enroll as schedule_input
from test_schedule import make_plan, step

from reminders.roles import Role
from reminders.schedule import compute_schedule
from reminders.store.schema import Message, Patient

SPANISH = "[es] "


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleWorld]:
    """The console over the test plan, given Spanish templates (each text starts "[es] ")."""
    english_only = api_fixtures.write_plan

    def with_spanish(root: Path) -> tuple[Path, Path]:
        plans, templates = english_only(root)
        plan = plans / "knee.yaml"
        plan.write_text(plan.read_text().replace("languages: [en]", "languages: [en, es]"))
        (templates / "knee" / "es").mkdir()
        for name, text in api_fixtures.TEMPLATES.items():
            (templates / "knee" / "es" / name).write_text(
                SPANISH + text if name.endswith(".sms.j2") else text
            )
        return plans, templates

    monkeypatch.setattr(api_fixtures, "write_plan", with_spanish)
    with console_world(tmp_path) as cw:
        yield cw


def _languages(console: ConsoleWorld, external_id: str) -> set[str]:
    """The languages the patient's messages are planned in (their templates' folders)."""
    query = (
        select(Message.language)
        .join(Patient, Patient.id == Message.patient_id)
        .where(Patient.external_id == external_id)
    )
    with console.world.app.storage.database.session() as session:
        return set(session.scalars(query))


def _cli_env(console: ConsoleWorld, root: Path) -> dict[str, str]:
    settings = console.world.app.settings
    return {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
        "REMINDERS_OUTBOX_FILE": str(root / "outbox.log"),
        "COLUMNS": "250",
    }


def test_the_schedule_takes_the_plans_language_for_a_regional_tag() -> None:
    plan = make_plan([step("welcome", "pre-procedure", days=-2)], language="en")
    plan = plan.model_copy(update={"languages": ["en", "es", "pt-BR"]})

    languages = {
        tag: compute_schedule(plan, schedule_input(date(2030, 3, 12), language=tag))[0].language
        for tag in ("es-mx", "es-419", "pt-br", "pt", "fr-ca", "en-gb")
    }

    assert languages == {
        "es-mx": "es",
        "es-419": "es",
        "pt-br": "pt-BR",  # stored lower-cased, templates as the plan spells them
        "pt": "en",  # a lookup drops subtags, never adds one
        "fr-ca": "en",
        "en-gb": "en",
    }


def test_api_a_regional_tag_is_enrolled_in_spanish_without_a_warning(
    console: ConsoleWorld,
) -> None:
    world = console.world

    response = world.enroll("ana", ANA, language="es-MX")
    world.at(WELCOME_AT)
    world.send_due()

    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []
    assert _languages(console, "ana") == {"es"}
    assert world.sms.bodies_to(ANA)[0].startswith(SPANISH)
    confirmation = twiml_message(world.text(ANA, "STOP").text)
    assert confirmation is not None and confirmation.startswith("Se ha dado de baja")


def test_console_a_regional_tag_is_enrolled_in_spanish(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    form = {
        "external_id": "ana",
        "first_name": "Ana",
        "phone": ANA,
        "timezone": "UTC",
        "language": "es-US",
        "plan": "knee",
        "procedure_date": api_fixtures.PROCEDURE_DATE,
        "sms_consent": "yes",
        "csrf_token": csrf_token(staff),
    }

    response = staff.post("/console/enroll", data=form)

    assert response.status_code == 303, response.text
    assert _languages(console, "ana") == {"es"}


def test_cli_and_csv_a_regional_tag_is_enrolled_in_spanish(
    console: ConsoleWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = _cli_env(console, tmp_path)
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(
        "external_id,first_name,phone,sms_consent,timezone,language,plan,procedure_date\n"
        f"ben,Ben,{BEN},yes,UTC,es-MX,knee,{api_fixtures.PROCEDURE_DATE}\n"
    )

    enrolled = run_json(
        env,
        *("enroll", "--id", "ana", "--first-name", "Ana", "--phone", ANA, "--sms-consent"),
        *("--timezone", "UTC", "--plan", "knee", "--procedure-date", "2026-03-02"),
        *("--language", "es-MX"),
    )
    imported = run(env, "import", str(csv_file), "--json")

    assert enrolled["warnings"] == []
    assert imported.exit_code == 0, imported.output
    assert _languages(console, "ana") == _languages(console, "ben") == {"es"}


def test_hl7_a_regional_tag_passes_through_as_fhirs_does(tmp_path: Path) -> None:
    """PID-15 es-MX (a BCP 47 code) was the mapping's default language; FHIR kept its es."""
    with open_feed(tmp_path, f"sqlite:///{tmp_path / 'feed.sqlite3'}") as feed:
        feed.handler.handle(siu(language="es-MX^Spanish (Mexico)^urn:ietf:bcp:47"))

        assert feed.enrollment("MRN1")["language"] == "es-mx"
