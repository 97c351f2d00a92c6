"""A worker killed mid-batch loses nothing and duplicates nothing: the next worker reconciles
the dead worker's claims with Twilio (the stand-in, in its own process) before any resend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from plan_fixtures import write_demo_plan
from sqlalchemy import select

from reminders.catalog import PlanCatalog
from reminders.schedule import ScheduleInput, compute_schedule
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.schema import Message
from reminders.store.storage import Storage
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

pytestmark = pytest.mark.slow

MESSAGES = 2000
ROOT = Path(__file__).resolve().parents[1]
WORKER = """
from reminders.app import App
from reminders.settings import Settings
app = App.from_settings(Settings())
print(dict(app.dispatcher().run_once().outcomes), flush=True)
app.close()
"""


def daytime_zone(now: datetime) -> str:
    """A zone where it is mid-day now, so quiet hours never hold a message back."""
    zones = ("America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles",
             "Asia/Kolkata", "Pacific/Auckland", "America/Sao_Paulo", "Asia/Dubai")  # fmt: skip
    return next(z for z in zones if 10 <= now.astimezone(ZoneInfo(z)).hour < 18)


def due_now_requests(catalog: PlanCatalog, count: int) -> list[EnrollmentRequest]:
    """`count` patients, each with their own number and one SMS due a minute ago."""
    plan = catalog.get("demo").plan
    now = datetime.now(UTC)
    zone = daytime_zone(now)
    procedure = now.date() - timedelta(days=1)
    discharge = next(
        m
        for m in compute_schedule(plan, ScheduleInput(procedure, zone))
        if m.step_id == "discharge"
    )
    due = now - timedelta(minutes=1)
    message = replace(discharge, due_at=due, send_before=due + timedelta(hours=1))
    return [
        EnrollmentRequest(
            PatientRecord(f"P-{i:05d}", "Maria", zone, "en", "sms", phone=f"+1202555{i:04d}"),
            plan.id,
            plan.version,
            procedure,
            None,
            [message],
        )
        for i in range(count)
    ]


def recorded(path: Path) -> list[dict[str, str]]:
    """The messages the stand-in accepted (complete lines only)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True)
            if line.endswith("\n")]  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    record = tmp_path / "twilio.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.testing.twilio_standin", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    yield url, record
    process.terminate()
    process.wait(timeout=10)


def worker_env(tmp_path: Path, url: str, database_url: str, claim_timeout: float) -> dict[str, str]:
    plans, templates = tmp_path / "plans", tmp_path / "templates"
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_PLANS_DIR": str(plans),
        "REMINDERS_TEMPLATES_DIR": str(templates),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "REMINDERS_CLINIC_NAME": "Riverside Spine Clinic",
        "REMINDERS_CLINIC_PHONE": "+12025550100",
        "REMINDERS_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "REMINDERS_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "REMINDERS_TWILIO_FROM_NUMBER": "+15005550006",
        "REMINDERS_TWILIO_BASE_URL": url,
        "REMINDERS_SMS_PER_SECOND": "0",
        "REMINDERS_CLAIM_TIMEOUT_SECONDS": str(claim_timeout),
    }


def test_killed_worker_mid_batch_every_message_reaches_twilio_exactly_once(
    tmp_path: Path, standin: tuple[str, Path]
) -> None:
    url, record = standin
    plans, templates = write_demo_plan(tmp_path)
    database_url = f"sqlite:///{tmp_path / 'reminders.sqlite3'}"
    storage = Storage.open(database_url)
    storage.patients.enroll_many(
        due_now_requests(PlanCatalog(plans, templates), MESSAGES), datetime.now(UTC)
    )

    first = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env=worker_env(tmp_path, url, database_url, claim_timeout=300),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = wait_for(lambda: len(recorded(record)) >= 100 or first.poll() is not None, 45)
    first.kill()
    _, errors = first.communicate(timeout=10)
    assert started and first.returncode == -9, errors.decode()[-2000:]
    at_kill = len(recorded(record))
    assert 0 < at_kill < MESSAGES
    assert (
        storage.message_views.status_counts().get("sending", 0) > 0
    )  # claims the dead worker left behind

    second = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=worker_env(tmp_path, url, database_url, claim_timeout=0),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr[-2000:]

    accepted = Counter((item["to"], item["body"]) for item in recorded(record))
    with storage.database.engine.connect() as connection:
        outbox = {tuple(row) for row in connection.execute(select(Message.recipient, Message.body))}
    assert len(outbox) == MESSAGES
    assert set(accepted) == outbox
    assert [pair for pair, count in accepted.items() if count > 1] == []
    assert storage.message_views.status_counts() == {"sent": MESSAGES}
    storage.close()
