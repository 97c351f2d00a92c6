"""Import benchmark: a CSV of N patients on the MILD plan, imported through the CsvImport service.

The file goes through `App.csv_import(actor).run(data, dry_run=False)`, as the CLI's, the API's
and the console's imports do: decoded, parsed, validated row by row, enrolled in batches (every
message of every patient materialized as an outbox row, COPY on PostgreSQL). Prints seconds,
rows/s, messages/s and the importing process's peak RSS for SQLite and (when reachable, or given
with --database-url) PostgreSQL; each the median (min–max) of `--runs` fresh databases.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from reminders.access.actor import Actor
from reminders.app import App
from reminders.catalog import PlanCatalog
from reminders.settings import Settings
from reminders.store.storage import Storage


def import_csv(
    url: str, csv_path: Path, plans: Path, templates: Path, batch: int
) -> dict[str, Any]:
    """Import the CSV through the CsvImport service; runs in a fresh process for a clean RSS."""
    settings = Settings(database_url=url, plans_dir=plans, templates_dir=templates)
    app = App(settings, Storage.open(url), PlanCatalog(plans, templates))
    app.catalog.ids()  # load and check the plan before the clock starts
    importer = app.csv_import(Actor.system("bench_import"))
    importer.batch_size = batch
    started = time.perf_counter()
    try:
        with csv_path.open("rb") as stream:  # streamed, as the CLI's import reads a file
            summary = importer.run(stream, dry_run=False)
    except Exception as exc:  # a picklable error: the pool hangs on some that are not
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
    seconds = time.perf_counter() - started
    stored = sum(app.storage.message_views.status_counts().values())
    app.storage.close()
    return {
        "rows": summary.created + summary.updated + summary.unchanged,
        "rejected": summary.rejected,
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
    common.runs_argument(parser)
    args = parser.parse_args(argv)
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        csv_path = work / "patients.csv"
        common.write_patients_csv(csv_path, args.patients, plan_id)
        rows = []
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            results = []
            for _ in range(args.runs):
                with common.database(kind, work) as url:
                    result = run_import(url, csv_path, plans, templates, args.batch)
                if result["rows"] != args.patients or result["rejected"]:
                    raise RuntimeError(f"import did not take every row: {result}")
                print(common.label(kind), result, flush=True)
                results.append(result)
            seconds = [r["seconds"] for r in results]
            rows.append(
                [
                    common.label(kind),
                    args.patients,
                    results[0]["stored"],
                    common.with_spread(seconds),
                    common.with_spread([args.patients / s for s in seconds]),
                    common.with_spread([r["stored"] / r["seconds"] for r in results]),
                    common.with_spread([r["rss_mb"] for r in results]),
                ]
            )
    common.print_table(
        f"import through CsvImport: {args.patients:,} patients on plan '{plan_id}', batches of "
        f"{args.batch}; median (min–max) of {args.runs} run(s); seconds and RSS lower is better",
        ["database", "patients", "messages", "seconds", "rows/s", "messages/s", "peak RSS MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
