"""Baseline: one APScheduler 3 DateTrigger job per message in a SQLAlchemyJobStore.

This is what the common appointment-reminder tutorials build. Import, dispatch and lateness
are measured for the baseline and for this service on the same data (SQLite), and printed
with the ratio. The baseline runs twice: on SQLite as APScheduler leaves it (journal DELETE,
synchronous FULL: a durable fsync'd commit per job added), and with the journal mode and
synchronous setting our store gives its connections (read back from one), so the ratio
compares the schedulers rather than the durability settings. Each figure is the median
(min–max) of `--runs`.
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
from sqlalchemy import Engine, create_engine, event

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


def scheduler(url: str, pragmas: dict[str, str] | None = None) -> BackgroundScheduler:
    """A scheduler as the tutorials configure it (plus no misfire limit, so no job is lost);
    `pragmas` are set on each of its SQLite connections (None: SQLite's defaults)."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=jobstore_engine(url, pragmas))},
        executors={"default": ThreadPoolExecutor(10)},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )


def baseline_import(
    url: str, csv_path: Path, plans: Path, templates: Path, pragmas: dict[str, str] | None
) -> dict[str, Any]:
    """Validate each row, compute its schedule, add one job per message."""
    catalog = PlanCatalog(plans, templates)
    service = EnrollmentService(Storage.open("sqlite://"), catalog)
    catalog.ids()
    sched = scheduler(url, pragmas)
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
    # Some jobs are overdue (steps due before today); a paused scheduler that still holds them
    # tries to run them while shutting down and prints tracebacks from its own thread.
    sched.remove_all_jobs()
    sched.shutdown(wait=False)
    return {"rows": rows, "messages": jobs, "seconds": seconds}


def baseline_run(
    url: str, due: list[datetime], timeout: float, pragmas: dict[str, str] | None
) -> dict[str, Any]:
    """Add one job per instant, let the scheduler fire them all; seconds and lateness."""
    _sent.clear()
    sched = scheduler(url, pragmas)
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


def our_sqlite_settings(work: Path) -> dict[str, str]:
    """The journal mode and synchronous setting our store gives its SQLite connections, read
    back from a connection of a Storage (so this follows whatever the store sets)."""
    with common.database("sqlite", work) as url:
        storage = Storage.open(url)
        with storage.database.engine.connect() as connection:
            settings = {
                name: str(connection.exec_driver_sql(f"PRAGMA {name}").scalar())
                for name in ("journal_mode", "synchronous")
            }
        storage.close()
    return settings


def jobstore_engine(url: str, pragmas: dict[str, str] | None) -> Engine:
    """The baseline's database engine: SQLite as it comes, or with `pragmas` on each connection."""
    engine = create_engine(url)
    if pragmas:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for name, value in pragmas.items():
                cursor.execute(f"PRAGMA {name}={value}")
            cursor.close()

    return engine


SYNCHRONOUS = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
DISPATCH = "dispatch, msg/s (1 worker, null channel)"
IMPORT = "import, messages/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000, help="patients to import")
    parser.add_argument("--messages", type=int, default=5000, help="due messages to dispatch")
    parser.add_argument("--lateness-messages", type=int, default=1000)
    parser.add_argument("--start-in", type=float, default=20.0)
    parser.add_argument("--spread", type=float, default=40.0)
    parser.add_argument("--skip", default="", help="comma list of import,dispatch,lateness")
    common.runs_argument(parser)
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    figures: dict[str, dict[str, list[float]]] = {}

    def note(figure: str, who: str, value: float) -> None:
        figures.setdefault(figure, {}).setdefault(who, []).append(value)

    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        matched = our_sqlite_settings(work)
        # The baseline twice: APScheduler's SQLite as it comes (journal DELETE, synchronous
        # FULL), and with the journal mode and synchronous setting our store uses.
        variants: dict[str, dict[str, str] | None] = {"defaults": None, "matched": matched}
        csv_path = work / "patients.csv"
        common.write_patients_csv(csv_path, args.patients, plan_id)
        for number in range(1, args.runs + 1):
            if "import" not in skip:
                with common.database("sqlite", work) as url:
                    ours = bench_import.run_import(url, csv_path, plans, templates, 1000)
                note(IMPORT, "ours", ours["stored"] / ours["seconds"])
                for variant, pragmas in variants.items():
                    with common.database("sqlite", work) as url:
                        base = baseline_import(url, csv_path, plans, templates, pragmas)
                    note(IMPORT, variant, base["messages"] / base["seconds"])

            if "dispatch" not in skip:
                ours = bench_dispatch.run(
                    "sqlite", work, plans, templates, plan_id, args.messages, 1, "null", 200
                )
                note(DISPATCH, "ours", args.messages / ours["seconds"])
                for variant, pragmas in variants.items():
                    with common.database("sqlite", work) as url:
                        now = datetime.now(UTC)
                        due = [now - timedelta(seconds=30)] * args.messages
                        base = baseline_run(url, due, 600, pragmas)
                    note(DISPATCH, variant, base["ran"] / base["seconds"])

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
                for name in ("p50", "p99", "max"):
                    note(f"lateness {name}, s", "ours", ours[name])
                for variant, pragmas in variants.items():
                    rng = random.Random(3)
                    now = datetime.now(UTC)
                    due = sorted(
                        now + timedelta(seconds=args.start_in + rng.random() * args.spread)
                        for _ in range(args.lateness_messages)
                    )
                    timeout = args.start_in + args.spread + 120
                    with common.database("sqlite", work) as url:
                        base = baseline_run(url, due, timeout, pragmas)
                    for name, fraction in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
                        late = common.percentile(base["lateness"], fraction)
                        note(f"lateness {name}, s", variant, late)
            latest = {f: {w: round(v[-1], 4) for w, v in d.items()} for f, d in figures.items()}
            print(f"run {number}/{args.runs}: {latest}", flush=True)
    print_figures(figures, matched, args.runs)


def print_figures(
    figures: dict[str, dict[str, list[float]]], matched: dict[str, str], runs: int
) -> None:
    """One row per figure: ours, both baselines, and by how much ours is better than each."""
    rows = []
    for figure, values in figures.items():
        lower_is_better = figure.startswith("lateness")

        def better(theirs: list[float], ours: list[float], lower: bool = lower_is_better) -> str:
            pairs = [(o, t) for o, t in zip(ours, theirs, strict=True) if min(o, t) > 0]
            return common.with_spread([t / o if lower else o / t for o, t in pairs] or [0.0])

        rows.append(
            [
                figure,
                "lower" if lower_is_better else "higher",
                common.with_spread(values["ours"]),
                common.with_spread(values["defaults"]),
                common.with_spread(values["matched"]),
                better(values["defaults"], values["ours"]),
                better(values["matched"], values["ours"]),
            ]
        )
    journal = matched["journal_mode"].upper()
    synchronous = SYNCHRONOUS.get(matched["synchronous"], matched["synchronous"])
    common.print_table(
        f"ours vs one APScheduler job per message (SQLite), median (min–max) of {runs} run(s); "
        '"ours better by" > 1: ours is better (rates: ours ÷ baseline; lateness: baseline ÷ '
        "ours)",
        [
            "figure",
            "better",
            "ours",
            "baseline, APScheduler's defaults (DELETE, FULL)",
            f"baseline, our settings ({journal}, {synchronous})",
            "ours better by (defaults)",
            f"ours better by ({journal}, {synchronous})",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
