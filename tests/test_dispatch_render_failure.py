"""A template that fails for one patient fails that message (with the template's file and line)
and nothing else: other patients get theirs, the timeline still shows, and staff get a flag."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from typer.testing import CliRunner

from reminders.catalog import PlanCatalog
from reminders.cli.main import app
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel

DIVIDING = (
    "{{ clinic.name }}: take {{ 10 // (patient.attributes.get('n', '1')|int) }} steps an hour."
    "{% if first_sms %} Reply STOP to opt out.{% endif %}\n"
)


def test_a_template_failing_for_one_patient_fails_only_that_message(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    plans, templates = write_demo_plan(tmp_path)
    (templates / "demo/en/discharge.sms.j2").write_text("{# line 1 #}\n" + DIVIDING)
    catalog = PlanCatalog(plans, templates)
    now = datetime.now(UTC)
    requests = due_now_requests(catalog, now, 2)
    requests = [
        replace(r, patient=replace(r.patient, attributes={"n": n}))
        for r, n in zip(requests, ("0", "2"), strict=True)
    ]
    storage.patients.enroll_many(requests, now)
    sms = InMemoryChannel("sms")
    settings = DispatchSettings(clinic=CLINIC)
    dispatcher = Dispatcher(
        storage, catalog, {"sms": sms, "email": InMemoryChannel("email")}, settings
    )

    report = dispatcher.run_once()

    assert report.outcomes == {"failed": 1, "sent": 1}
    [failed] = storage.message_views.timeline("P-00000")
    assert failed.status == "failed"
    assert failed.status_reason is not None
    assert "demo/en/discharge.sms.j2:2" in failed.status_reason
    assert "ZeroDivisionError" in failed.status_reason
    assert [m.body for _, m in sms.sent] == [
        "Riverside Clinic: take 5 steps an hour. Reply STOP to opt out."
    ]
    [flag] = storage.outcomes.list_flags()
    assert (flag.external_id, flag.kind, flag.message_id) == ("P-00000", "render_failed", failed.id)
    assert flag.detail.startswith("discharge: the sms message could not be prepared")
    assert "demo/en/discharge.sms.j2:2" in flag.detail
    assert dispatcher.run_once().handled == 0  # failed for good: no second flag
    assert len(storage.outcomes.list_flags()) == 1
    env = {
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_PLANS_DIR": str(plans),
        "REMINDERS_TEMPLATES_DIR": str(templates),
    }
    shown = CliRunner().invoke(app, ["timeline", "P-00000", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    [message] = json.loads(shown.stdout)["messages"]
    assert "discharge.sms.j2:2" in str(message)
    flags = CliRunner().invoke(app, ["flags", "--json"], env=env)
    assert flags.exit_code == 0, flags.output
    assert [f["kind"] for f in json.loads(flags.stdout)] == ["render_failed"]
