"""Opting back in is one operation, whether the patient texts START, staff use the API, or
staff use the CLI: every message SMS stopping held back comes back while its window is open,
except what staff cancelled and a step that goes by email instead; the audit log names who."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_fixtures import ENROLLED_AT, World, running_world, utc
from typer.testing import CliRunner

from reminders.api.keys import create_key
from reminders.cli.main import app as cli
from reminders.roles import Role

ANA = "+12025550143"
STOPPED = f"opted out of SMS by text on {ENROLLED_AT[:10]} (STOP)"
OPT_IN_AT = "2026-04-03T10:00:00Z"  # the week-4 relief check's window (2 days) has closed


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    with running_world(tmp_path, database_url) as started:
        yield started


def steps(world: World) -> dict[str, tuple[str, str, str | None]]:
    return {
        m["step_id"]: (m["channel"], m["status"], m["status_reason"])
        for m in world.timeline("ana")["messages"]
    }


def start_by_text(world: World) -> str:
    assert world.text(ANA, "START").status_code == 200
    return "system:inbound-sms"


def opt_in_by_api(world: World) -> str:
    response = world.client.post(
        "/v1/patients/ana/sms-opt-in", json={"note": "agreed by phone"}, headers=world.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"external_id": "ana", "opted_in": True, "restored_messages": 1}
    return "key:tests"


def opt_in_by_cli(world: World) -> str:
    settings = world.app.settings
    env = {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
    }
    args = ["--as", "nurse.kim", "opt-in", "ana", "--note", "agreed by phone", "--json"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "external_id": "ana",
        "opted_in": True,
        "restored_messages": 1,
    }
    return "cli:nurse.kim"


@dataclass(frozen=True)
class Door:
    opt_in: Callable[[World], str]
    source: str


DOORS = [
    pytest.param(Door(start_by_text, "START"), id="START"),
    pytest.param(Door(opt_in_by_api, "staff: agreed by phone"), id="api"),
    pytest.param(Door(opt_in_by_cli, "staff: agreed by phone"), id="cli"),
]


@pytest.mark.parametrize("door", DOORS)
def test_opting_in_restores_what_stopping_held_back_and_nothing_else(
    world: World, door: Door
) -> None:
    assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    assert world.text(ANA, "STOP").status_code == 200
    # What staff cancel (a no-show included) stays cancelled through each door too:
    # tests/test_cancelled_stays_cancelled.py.
    before = steps(world)
    assert before == {
        "welcome": ("email", "pending", f"sent by email: {STOPPED}"),
        "relief-check-week-4": ("sms", "skipped", STOPPED),
        "relief-check-week-6": ("sms", "skipped", STOPPED),
        "follow-up": ("email", "pending", f"sent by email: {STOPPED}"),
    }
    world.at(OPT_IN_AT)

    actor = door.opt_in(world)

    assert steps(world) == {
        "welcome": before["welcome"],  # goes by email: never the step twice
        "relief-check-week-4": before["relief-check-week-4"],  # its window closed
        "relief-check-week-6": ("sms", "pending", None),
        "follow-up": before["follow-up"],  # goes by email too
    }
    storage = world.app.storage
    state = storage.patients.enrollment_details(1).patient
    assert state.sms_opted_out_at is None
    events = storage.inbound.opt_out_events(state.id)
    assert [(e.kind, e.keyword, e.at) for e in events][-1] == (
        "opt_in",
        door.source,
        utc(OPT_IN_AT),
    )
    entries = storage.access.audit_entries(actor=actor)
    opt_ins = [e for e in entries if e.action == "sms.opt_in"]
    assert [(e.external_id, e.detail) for e in opt_ins] == [
        ("ana", f"opted back in to SMS ({door.source}); 1 message(s) restored")
    ]


def test_opting_in_a_patient_who_never_opted_out_changes_nothing(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    before = steps(world)

    response = world.client.post("/v1/patients/ana/sms-opt-in", headers=world.headers)

    assert response.status_code == 200
    assert response.json() == {"external_id": "ana", "opted_in": False, "restored_messages": 0}
    assert steps(world) == before


def test_opting_in_an_unknown_patient_is_a_404(world: World) -> None:
    response = world.client.post("/v1/patients/nobody/sms-opt-in", headers=world.headers)

    assert response.status_code == 404


def test_a_viewer_key_may_not_opt_a_patient_in(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    assert world.text(ANA, "STOP").status_code == 200
    key, _ = create_key(world.app, "reader", Role.VIEWER)

    response = world.client.post(
        "/v1/patients/ana/sms-opt-in", headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 403
    state = world.app.storage.patients.enrollment_details(1).patient
    assert state.sms_opted_out_at is not None
