"""Memory benchmark: peak RSS of a process running the DispatchService over many pending messages.

Patients and enrollments are created, then pending messages due in the future are bulk
inserted with SQLAlchemy Core. A fresh process runs the service (several idle passes) and
reports its peak RSS; it must not grow with the number of pending messages. With `--runs N`
the service runs N times (each a fresh process) over the same filled database; the peak RSS
is the median (min–max) of those runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from benchmarks import common
from reminders.catalog import PlanCatalog
from reminders.dispatch.service import DispatchService
from reminders.store.schema import Message
from reminders.store.storage import Storage


def fill(url: str, plans: Path, templates: Path, plan_id: str, pending: int) -> float:
    """Insert `pending` future messages over 1000 patients; returns seconds taken."""
    storage = Storage.open(url)
    catalog = PlanCatalog(plans, templates)
    future = datetime.now(UTC) + timedelta(days=30)
    patients = min(1000, pending)
    outcomes = storage.patients.enroll_many(
        common.due_requests(catalog, plan_id, [future] * patients), datetime.now(UTC)
    )
    with storage.database.engine.connect() as connection:
        template = dict(connection.execute(Message.__table__.select().limit(1)).mappings().one())
    template.pop("id")
    started = time.perf_counter()
    remaining = pending - patients
    with storage.database.engine.begin() as connection:
        while remaining > 0:
            rows = []
            for n in range(min(20_000, remaining)):
                outcome = outcomes[n % patients]
                due = future + timedelta(seconds=remaining - n)
                rows.append(
                    {
                        **template,
                        "patient_id": outcome.patient_id,
                        "enrollment_id": outcome.enrollment_id,
                        "step_id": f"s{remaining - n}",
                        "due_at": due,
                        "next_attempt_at": due,
                        "send_before": due + timedelta(hours=2),
                    }
                )
            connection.execute(insert(Message), rows)
            remaining -= len(rows)
    seconds = time.perf_counter() - started
    assert storage.message_views.status_counts() == {"pending": pending}
    storage.close()
    return seconds


def serve(url: str, plans: Path, templates: Path, seconds: float) -> dict[str, Any]:
    """Run the service (idle poll 1 s) for `seconds` in this process; its passes and peak RSS."""
    storage = Storage.open(url)
    catalog = PlanCatalog(plans, templates)
    catalog.ids()
    before = common.peak_rss_mb()
    service = DispatchService(common.dispatcher(storage, catalog), idle_poll=timedelta(seconds=1))
    service.start()
    time.sleep(seconds)
    service.stop()
    storage.close()
    return {"passes": service.passes, "rss_before": before, "rss_mb": common.peak_rss_mb()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", default="1000,1000000", help="pending message counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the service runs")
    parser.add_argument(
        "--database-url", help="one database to use (default: SQLite, and local PostgreSQL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    common.runs_argument(parser)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    rows = []
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            for pending in (int(p) for p in args.pending.split(",")):
                with common.database(kind, work) as url:
                    fill_seconds = fill(url, plans, templates, plan_id, pending)
                    runs = []
                    for _ in range(args.runs):
                        with context.Pool(1) as pool:
                            runs.append(pool.apply(serve, (url, plans, templates, args.seconds)))
                rows.append(
                    [
                        common.label(kind),
                        pending,
                        fill_seconds,
                        common.with_spread([r["passes"] for r in runs]),
                        common.with_spread([r["rss_before"] for r in runs]),
                        common.with_spread([r["rss_mb"] for r in runs]),
                    ]
                )
                print(rows[-1], flush=True)
    common.print_table(
        f"memory: DispatchService for {args.seconds:g} s over pending future messages; median "
        f"(min–max) of {args.runs} run(s); peak RSS lower is better and should not grow",
        ["database", "pending", "insert s", "passes", "RSS before MiB", "peak RSS MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
