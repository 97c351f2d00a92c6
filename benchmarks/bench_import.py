"""Import benchmark: a CSV of N patients on the MILD plan, validated and enrolled in batches.

Every message of every patient is materialized as an outbox row. Prints seconds, rows/s,
messages/s and the importing process's peak RSS, for SQLite and (when reachable, or given
with --database-url) PostgreSQL.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import read_input
from reminders.store.storage import Storage


def import_csv(
    url: str, csv_path: Path, plans: Path, templates: Path, batch: int
) -> dict[str, Any]:
    """Validate and enroll every row of the CSV; runs in a fresh process for a clean RSS."""
    storage = Storage.open(url)
    service = EnrollmentService(storage, PlanCatalog(plans, templates))
    service.catalog.ids()  # load and check the plan before the clock starts
    started = time.perf_counter()
    rows = messages = 0
    entries = []
    for number, data in common.csv_records(csv_path):
        entries.append(service.validate(read_input(data, number), row=number))
        if len(entries) == batch:
            messages += sum(len(o.changes) for o in service.enroll(entries))
            rows += len(entries)
            entries = []
    if entries:
        messages += sum(len(o.changes) for o in service.enroll(entries))
        rows += len(entries)
    seconds = time.perf_counter() - started
    stored = sum(storage.message_views.status_counts().values())
    storage.close()
    return {
        "rows": rows,
        "messages": messages,
        "stored": stored,
        "seconds": seconds,
        "rss_mb": common.peak_rss_mb(),
    }


def run_import(
    url: str, csv_path: Path, plans: Path, templates: Path, batch: int
) -> dict[str, Any]:
    """`import_csv` in a spawned process (so its peak RSS is the import's own)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(import_csv, (url, csv_path, plans, templates, batch))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="rows in the CSV")
    parser.add_argument("--batch", type=int, default=1000, help="patients per enroll call")
    parser.add_argument(
        "--database-url", help="one database to use (default: SQLite, and local PostgreSQL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        csv_path = work / "patients.csv"
        common.write_patients_csv(csv_path, args.patients, plan_id)
        rows = []
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            with common.database(kind, work) as url:
                result = run_import(url, csv_path, plans, templates, args.batch)
            assert result["stored"] == result["messages"], result
            rows.append(
                [
                    common.label(kind),
                    result["rows"],
                    result["messages"],
                    result["seconds"],
                    result["rows"] / result["seconds"],
                    result["messages"] / result["seconds"],
                    result["rss_mb"],
                ]
            )
    common.print_table(
        f"import: {args.patients:,} patients on plan '{plan_id}', batches of {args.batch}",
        ["database", "patients", "messages", "seconds", "rows/s", "messages/s", "peak RSS MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
