"""Chaos: several dispatcher processes on one database, killed at random (SIGKILL) and restarted,
against the Twilio stand-in (its own process) answering a share of sends with 500-after-create,
429 and timeouts, while patients text STOP and procedures are rescheduled.

Every patient has two SMS due now on the same day under `per_day: 1`. Afterwards, counted from
what the stand-in created (never from our own rows): each (number, text) at most once, no
patient over the cap, every "sent" row matched by exactly one created message and every
created message by a "sent" row, and every other row with a reason.

    .venv/bin/python -m benchmarks.chaos --patients 500 --workers 3 --runs 3
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from reminders.access.actor import Actor
from reminders.app import App
from reminders.replies.service import InboundSms
from reminders.settings import Settings
from reminders.store.schema import Message
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[1]
CLINIC_NUMBER = "+15005550006"
FAULTS = {"500-after-create": 0.10, "429": 0.10, "timeout": 0.05}
WORKER = """
import time
from reminders.app import App
from reminders.settings import Settings

app = App.from_settings(Settings())
dispatcher = app.dispatcher()
while True:
    if not dispatcher.run_once().handled:
        time.sleep(0.1)
"""


@dataclass
class ChaosFigures:
    """What was injected and what came out; `problems` must all be zero."""

    patients: int
    messages: int
    workers: int
    seconds: float = 0.0
    kills: int = 0
    opt_outs: int = 0
    reschedules: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    created: int = 0
    duplicates: int = 0
    over_cap: int = 0
    sent_not_at_twilio: int = 0
    at_twilio_not_sent: int = 0
    without_reason: int = 0
    unsettled: int = 0

    @property
    def problems(self) -> dict[str, int]:
        """Every check that must be zero, by name."""
        return {
            "duplicates": self.duplicates,
            "over_cap": self.over_cap,
            "sent_not_at_twilio": self.sent_not_at_twilio,
            "at_twilio_not_sent": self.at_twilio_not_sent,
            "without_reason": self.without_reason,
            "unsettled": self.unsettled,
        }


def settings_for(database_url: str, work: Path, twilio_url: str) -> dict[str, str]:
    """The workers' environment: short claim timeout, fast retries, Twilio timeout of 1 s."""
    return {
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_PLANS_DIR": str(work / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(work / "templates"),
        "REMINDERS_OUTBOX_FILE": str(work / "outbox.log"),
        "REMINDERS_CLINIC_NAME": "Riverside Clinic",
        "REMINDERS_CLINIC_PHONE": "+12025550100",
        "REMINDERS_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "REMINDERS_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "REMINDERS_TWILIO_FROM_NUMBER": CLINIC_NUMBER,
        "REMINDERS_TWILIO_BASE_URL": twilio_url,
        "REMINDERS_TWILIO_TIMEOUT_SECONDS": "1",
        "REMINDERS_SMS_PER_SECOND": "0",
        "REMINDERS_CLAIM_TIMEOUT_SECONDS": "3",
        "REMINDERS_RETRY_BASE_SECONDS": "0.5",
        "REMINDERS_MAX_ATTEMPTS": "6",
        "REMINDERS_DISPATCH_BATCH_SIZE": "20",
    }


def _write_plan(work: Path) -> None:
    """The tests' demo plan, capped at one SMS a day."""
    sys.path.insert(0, str(ROOT / "tests"))
    from plan_fixtures import write_demo_plan

    plans, _ = write_demo_plan(work)
    plan = plans / "demo.yaml"
    plan.write_text(plan.read_text().replace("per_day: 3", "per_day: 1"))


def _enroll(app: App, patients: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from outbox_fixtures import due_now_requests

    now = datetime.now(UTC)
    requests = due_now_requests(
        app.catalog, now, patients, steps=("discharge", "week-one"), window=timedelta(hours=2)
    )
    for start in range(0, len(requests), 1000):
        app.storage.patients.enroll_many(requests[start : start + 1000], now)


class Workers:
    """Dispatcher processes that can be killed and restarted."""

    def __init__(self, count: int, env: dict[str, str], cwd: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.cwd = cwd
        self.processes = [self._start() for _ in range(count)]

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL one worker at random and start a new one in its place."""
        index = rng.randrange(len(self.processes))
        victim = self.processes[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        self.processes[index] = self._start()

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def _settled(app: App) -> bool:
    """No message in "sending" and none due now (what waits is deferred to a later day)."""
    counts = app.storage.message_views.status_counts()
    next_due = app.storage.outbox.next_due_at()
    return not counts.get("sending") and (next_due is None or next_due > datetime.now(UTC))


def run_chaos(
    database_url: str,
    work: Path,
    *,
    patients: int,
    workers: int = 3,
    kill_every: float = 2.0,
    kills: int = 5,
    event_share: float = 0.05,
    seed: int = 7,
    timeout: float = 300.0,
) -> ChaosFigures:
    """Run the whole scenario on `database_url` (already empty) and return its figures."""
    rng = random.Random(seed)
    _write_plan(work)
    figures = ChaosFigures(patients, 2 * patients, workers)
    faults = ",".join(f"{name}={share}" for name, share in FAULTS.items())
    record, fault_log = work / "twilio.jsonl", work / "faults.jsonl"
    twilio = subprocess.Popen(
        [sys.executable, "-m", "reminders.testing.twilio_standin", "--record", str(record),
         "--fault-log", str(fault_log), "--faults", faults, "--seed", str(seed),
         "--slow-seconds", "2"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert twilio.stdout is not None
    url = twilio.stdout.readline().strip()
    env = settings_for(database_url, work, url)
    app = App.from_settings(Settings(_env_file=None, **{k[10:].lower(): v for k, v in env.items()}))
    _enroll(app, patients)
    replies = app.replies()
    service = app.enrollment(Actor.cli("chaos"))
    chosen = rng.sample(range(patients), k=min(patients, 2 * max(1, int(patients * event_share))))
    stops, moves = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    started = time.monotonic()
    pool = Workers(workers, env, work)
    try:
        next_kill = started + kill_every
        while time.monotonic() - started < timeout:
            now = time.monotonic()
            if figures.kills < kills and now >= next_kill:
                pool.kill_one(rng)
                figures.kills += 1
                next_kill = now + kill_every
            if stops:
                index = stops.pop()
                replies.handle_inbound(
                    InboundSms(f"SMstop{index}", f"+1202555{index:04d}", CLINIC_NUMBER, "STOP")
                )
                figures.opt_outs += 1
            if moves:
                index = moves.pop()
                later = datetime.now(UTC).date() + timedelta(days=rng.choice((-2, 1, 3)))
                service.reschedule(f"P-{index:05d}", later)
                figures.reschedules += 1
            if figures.kills >= kills and not stops and not moves and _settled(app):
                break
            time.sleep(0.2)
    finally:
        pool.stop()
        figures.seconds = time.monotonic() - started
        twilio.send_signal(signal.SIGTERM)
        twilio.wait(timeout=10)
    _count(figures, app, record, fault_log)
    app.close()
    return figures


def _count(figures: ChaosFigures, app: App, record: Path, fault_log: Path) -> None:
    import json

    created = [json.loads(line) for line in record.read_text().splitlines() if line]
    figures.faults = Counter(
        json.loads(line)["fault"] for line in fault_log.read_text().splitlines()
    )
    figures.created = len(created)
    per_text = Counter((item["to"], item["body"]) for item in created)
    figures.duplicates = sum(count - 1 for count in per_text.values() if count > 1)
    per_patient = Counter(item["to"] for item in created)
    figures.over_cap = sum(1 for count in per_patient.values() if count > 1)
    with app.storage.database.session() as session:
        rows = session.execute(
            select(
                Message.status,
                Message.status_reason,
                Message.recipient,
                Message.body,
                Message.due_at,
                Message.next_attempt_at,
            )
        ).all()
    figures.statuses = Counter(row.status for row in rows)
    sent = Counter((row.recipient, row.body) for row in rows if row.status == "sent")
    figures.sent_not_at_twilio = sum(1 for key in sent if key not in per_text)
    figures.at_twilio_not_sent = sum(1 for key in per_text if key not in sent)
    figures.without_reason = sum(1 for row in rows if _needs_reason(row) and not row.status_reason)
    figures.unsettled = figures.statuses.get("sending", 0)


def _needs_reason(row: Any) -> bool:
    """Skipped, failed and cancelled rows say why; so does a pending row held past its due time."""
    if row.status in ("skipped", "failed", "cancelled"):
        return True
    return bool(row.status == "pending" and row.next_attempt_at > row.due_at)


def main(argv: list[str] | None = None) -> None:
    """Run the scenario `--runs` times on PostgreSQL and print each run and the median."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql")
    args = parser.parse_args(argv)
    results = []
    for run in range(args.runs):
        with common.workdir() as work, common.database(args.database_url, work) as url:
            figures = run_chaos(
                url,
                work,
                patients=args.patients,
                workers=args.workers,
                kills=args.kills,
                kill_every=args.kill_every,
                seed=7 + run,
            )
        results.append(figures)
        print(
            f"run {run + 1}: {figures.seconds:.1f} s, {figures.kills} kills, "
            f"faults {dict(figures.faults)}, {figures.opt_outs} STOP, "
            f"{figures.reschedules} reschedules, created {figures.created}, "
            f"statuses {dict(figures.statuses)}, problems {figures.problems}",
            flush=True,
        )
    rows = []
    for name, values in (
        ("seconds", [f.seconds for f in results]),
        ("texts created at Twilio", [f.created for f in results]),
        ("500 after create", [f.faults["500-after-create"] for f in results]),
        ("429", [f.faults["429"] for f in results]),
        ("timeouts", [f.faults["timeout"] for f in results]),
        ("workers killed", [f.kills for f in results]),
        ("duplicates", [f.duplicates for f in results]),
        ("patients over the cap", [f.over_cap for f in results]),
        ("other problems", [sum(f.problems.values()) - f.duplicates - f.over_cap for f in results]),
    ):
        spread = f"{min(values):g}-{max(values):g}"
        rows.append([name, f"{statistics.median(values):g}", spread])
    common.print_table(
        f"chaos: {args.patients} patients x 2 SMS, {args.workers} workers, {args.runs} runs",
        ["figure", "median", "min-max"],
        rows,
    )


if __name__ == "__main__":
    main()
