"""A dispatcher SIGKILLed while it applies kept delivery reports loses none of them: Twilio
does not post a report again, so a carrier opt-out (21610) the dead process had taken must
still stop texting the number, once, when a later pass applies it.

The dead dispatcher is a process of its own (`reminders serve` or `send-due` as deployed),
running the real `ReplyService.apply_early_reports` over the same database; it is stopped at
a seam by patching one method in that process only, then killed there. On a SQLite file and
on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from api_fixtures import ANA, WELCOME_AT, World, utc
from sqlalchemy import select, text

from reminders.store.inbound_schema import EarlyReport

pytestmark = [pytest.mark.usefixtures("database_url"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

# A dispatcher that stops at `SEAM` (module, class, method) the first time it gets there,
# says so on stdout and waits to be killed (an alarm ends it if nobody does).
DISPATCHER = """
import importlib, signal, sys

from reminders.app import App
from reminders.settings import Settings

module, owner, method = sys.argv[1:4]
cls = getattr(importlib.import_module(module), owner)

def stop_here(*args, **kwargs):
    print("stopped at " + method, flush=True)
    signal.pause()

signal.alarm(120)
setattr(cls, method, stop_here)
app = App.from_settings(Settings())
print("applied", app.replies().apply_early_reports(), flush=True)
"""

SEAMS = {
    # The reports are taken; the first is not recorded yet.
    "after taking them": ("reminders.store.outbox", "Outbox", "update_delivery_status"),
    # The opt-out's message is recorded undelivered and its flag raised; SMS not stopped yet.
    "half-way through one": ("reminders.consent", "SmsConsentService", "stop"),
}


def dispatcher_env(world: World, root: Path) -> dict[str, str]:
    settings = world.app.settings
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
        "REMINDERS_CLINIC_NAME": settings.clinic_name,
        "REMINDERS_CLINIC_PHONE": settings.clinic_phone,
        "REMINDERS_OUTBOX_FILE": str(root / "outbox.log"),
    }


def killed_at(world: World, root: Path, seam: tuple[str, str, str]) -> None:
    """A dispatcher process applies the kept reports and is SIGKILLed at `seam`."""
    process = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, *seam],
        env=dispatcher_env(world, root),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    said = process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    _, errors = process.communicate(timeout=30)
    assert said == f"stopped at {seam[2]}\n", errors[-2000:]
    assert process.returncode == -signal.SIGKILL


def wait_for_its_transaction_to_end(world: World) -> None:
    """PostgreSQL rolls a dead client's transaction back once it sees the connection drop,
    a moment after the kill; until then the rows stay locked and a pass skips them. Take
    their locks, waiting (SQLite: the write lock, which went with the process)."""
    database = world.app.storage.database
    with database.session() as session:
        if database.concurrent_writers:
            session.execute(text("SET LOCAL lock_timeout = '30s'"))
        session.execute(select(EarlyReport.id).with_for_update())


def audit_actions(world: World, action: str) -> int:
    return sum(e.action == action for e in world.app.storage.access.audit_entries(limit=1000))


@pytest.mark.parametrize("seam", SEAMS.values(), ids=SEAMS.keys())
def test_a_carrier_opt_out_taken_by_a_killed_dispatcher_is_applied_by_a_later_pass(
    world: World, tmp_path: Path, seam: tuple[str, str, str]
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    (sid,) = world.sms.sids
    # The report came before the send was recorded, and was kept.
    world.app.storage.early_reports.keep(sid, "undelivered", "21610", utc(WELCOME_AT))

    killed_at(world, tmp_path, seam)
    wait_for_its_transaction_to_end(world)
    applied = world.app.replies().apply_early_reports()

    assert applied == 1
    assert world.app.storage.early_reports.kept() == []
    message = world.message("ana", "welcome")
    assert (message["status"], message["error_code"]) == ("undelivered", "21610")
    patient = next(p for p in world.get("/v1/patients") if p["external_id"] == "ana")
    assert patient["sms_opted_out_at"] is not None
    assert len(world.get("/v1/flags", kind="undelivered")) == 1
    assert audit_actions(world, "sms.opt_out") == 1
