"""Baseline: one APScheduler 3 DateTrigger job per message in a SQLAlchemyJobStore.

This is what the common appointment-reminder tutorials build. Import, dispatch and lateness
are measured for the baseline and for this service on the same data (SQLite), and printed
with the ratio.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from benchmarks import bench_dispatch, bench_import, bench_lateness, common
from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService, schedule_input
from reminders.enrollment_input import read_input
from reminders.schedule import compute_schedule
from reminders.store.storage import Storage

_lock = threading.Lock()
_sent: list[float] = []  # lateness of each job that ran, in seconds


def send_reminder(outbox_id: int, to: str, step_id: str, due_ts: float) -> None:
    """The job: what NullChannel does (count the message), plus when it ran."""
    with _lock:
        _sent.append(time.time() - due_ts)


def scheduler(url: str) -> BackgroundScheduler:
    """A scheduler as the tutorials configure it (plus no misfire limit, so no job is lost)."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(10)},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )


def baseline_import(url: str, csv_path: Path, plans: Path, templates: Path) -> dict[str, Any]:
    """Validate each row, compute its schedule, add one job per message."""
    catalog = PlanCatalog(plans, templates)
    service = EnrollmentService(Storage.open("sqlite://"), catalog)
    catalog.ids()
    sched = scheduler(url)
    sched.start(paused=True)
    started = time.perf_counter()
    rows = jobs = 0
    for number, data in common.csv_records(csv_path):
        entry = service.validate(read_input(data, number), row=number)
        plan = catalog.get(entry.item.plan).plan
        enrollment = schedule_input(
            plan, entry.record, entry.item.procedure_date, entry.item.procedure_time, None
        )
        for message in compute_schedule(plan, enrollment):
            if message.skip_reason:
                continue
            sched.add_job(
                send_reminder,
                "date",
                run_date=message.due_at,
                args=[jobs, entry.record.phone, message.step_id, message.due_at.timestamp()],
                id=f"{entry.record.external_id}-{message.step_id}",
            )
            jobs += 1
        rows += 1
    seconds = time.perf_counter() - started
    sched.shutdown(wait=False)
    return {"rows": rows, "messages": jobs, "seconds": seconds}


def baseline_run(url: str, due: list[datetime], timeout: float) -> dict[str, Any]:
    """Add one job per instant, let the scheduler fire them all; seconds and lateness."""
    _sent.clear()
    sched = scheduler(url)
    sched.start(paused=True)
    for n, at in enumerate(due):
        sched.add_job(
            send_reminder, "date", run_date=at, args=[n, "+12025550143", "s", at.timestamp()]
        )
    started = time.perf_counter()
    sched.resume()
    common.wait_until(lambda: len(_sent) >= len(due), timeout, step=0.01)
    seconds = time.perf_counter() - started
    sched.shutdown(wait=True)
    return {"ran": len(_sent), "seconds": seconds, "lateness": list(_sent)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000, help="patients to import")
    parser.add_argument("--messages", type=int, default=5000, help="due messages to dispatch")
    parser.add_argument("--lateness-messages", type=int, default=1000)
    parser.add_argument("--start-in", type=float, default=20.0)
    parser.add_argument("--spread", type=float, default=40.0)
    parser.add_argument("--skip", default="", help="comma list of import,dispatch,lateness")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    rows = []
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)

        if "import" not in skip:
            csv_path = work / "patients.csv"
            common.write_patients_csv(csv_path, args.patients, plan_id)
            with common.database("sqlite", work) as url:
                ours = bench_import.run_import(url, csv_path, plans, templates, 1000)
            with common.database("sqlite", work) as url:
                base = baseline_import(url, csv_path, plans, templates)
            ours_rate = ours["messages"] / ours["seconds"]
            base_rate = base["messages"] / base["seconds"]
            rows.append(
                ["import messages/s", ours_rate, base_rate, ours_rate / base_rate, ">= 20x"]
            )
            print(rows[-1], ours, {k: v for k, v in base.items()}, flush=True)

        if "dispatch" not in skip:
            ours = bench_dispatch.run(
                "sqlite", work, plans, templates, plan_id, args.messages, 1, "null", 200
            )
            with common.database("sqlite", work) as url:
                now = datetime.now(UTC)
                base = baseline_run(url, [now - timedelta(seconds=30)] * args.messages, 600)
            ours_rate = args.messages / ours["seconds"]
            base_rate = base["ran"] / base["seconds"]
            rows.append(
                [
                    "dispatch msg/s (1 worker)",
                    ours_rate,
                    base_rate,
                    ours_rate / base_rate,
                    ">= 2000 msg/s",
                ]
            )
            print(rows[-1], ours["check"], base["ran"], flush=True)

        if "lateness" not in skip:
            with common.database("sqlite", work) as url:
                ours = bench_lateness.measure(
                    url,
                    plans,
                    templates,
                    plan_id,
                    args.lateness_messages,
                    args.start_in,
                    args.spread,
                )
            rng = random.Random(3)
            now = datetime.now(UTC)
            due = sorted(
                now + timedelta(seconds=args.start_in + rng.random() * args.spread)
                for _ in range(args.lateness_messages)
            )
            with common.database("sqlite", work) as url:
                base = baseline_run(url, due, args.start_in + args.spread + 120)
            for name, fraction in (("p50", 0.5), ("p99", 0.99)):
                theirs = common.percentile(base["lateness"], fraction)
                rows.append(
                    [f"lateness {name} s", ours[name], theirs, theirs / ours[name], "p99 < 1 s"]
                )
            rows.append(
                [
                    "lateness max s",
                    ours["max"],
                    max(base["lateness"]),
                    max(base["lateness"]) / ours["max"],
                    "",
                ]
            )
    common.print_table(
        "ours vs one APScheduler job per message (SQLite); ratio = how many times better ours is",
        ["figure", "ours", "baseline", "ratio", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
