"""Lateness benchmark: how long after its due instant each message is sent, in real time.

A DispatchService runs idle (armed for its idle poll); then messages due at spread instants
over the next seconds are enrolled and the service is woken once, as the API does after an
enrollment. Lateness is sent_at - due_at, read from the database: lower is better. Each figure
is the median (min–max) of `--runs` fresh databases.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks import common
from reminders.catalog import PlanCatalog
from reminders.dispatch.service import DispatchService
from reminders.store.schema import Message
from reminders.store.storage import Storage


def measure(
    url: str,
    plans: Path,
    templates: Path,
    plan_id: str,
    messages: int,
    start_in: float,
    spread: float,
) -> dict[str, Any]:
    """Run the service, enroll due messages, wait for them all; lateness figures in seconds."""
    storage = Storage.open(url)
    catalog = PlanCatalog(plans, templates)
    catalog.ids()
    service = DispatchService(common.dispatcher(storage, catalog), idle_poll=timedelta(seconds=30))
    service.start()
    try:
        time.sleep(1.0)  # idle: the first pass found nothing and armed the idle poll
        now = datetime.now(UTC)
        rng = random.Random(3)
        due = sorted(
            now + timedelta(seconds=start_in + rng.random() * spread) for _ in range(messages)
        )
        common.enroll_due(storage, catalog, plan_id, due)
        service.wake()
        deadline = spread + start_in + 60
        done = common.wait_until(
            lambda: storage.message_views.status_counts().get("sent", 0) == messages,
            deadline,
            step=0.5,
        )
    finally:
        service.stop()
    with storage.database.engine.connect() as connection:
        rows = connection.execute(select(Message.due_at, Message.sent_at, Message.status)).all()
    storage.close()
    late = [(sent - due_at).total_seconds() for due_at, sent, _ in rows if sent is not None]
    return {
        "all_sent": done,
        "statuses": dict(_count(status for *_, status in rows)),
        "p50": common.percentile(late, 0.50),
        "p99": common.percentile(late, 0.99),
        "max": max(late),
        "min": min(late),
    }


FIGURES = ("p50", "p99", "max", "min")


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--start-in", type=float, default=20.0, help="seconds until the first")
    parser.add_argument("--spread", type=float, default=40.0, help="seconds they spread over")
    parser.add_argument(
        "--database-url", help="one database to use (default: SQLite, and local PostgreSQL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    common.runs_argument(parser)
    args = parser.parse_args(argv)
    rows = []
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            runs = []
            for _ in range(args.runs):
                with common.database(kind, work) as url:
                    runs.append(
                        measure(
                            url,
                            plans,
                            templates,
                            plan_id,
                            args.messages,
                            args.start_in,
                            args.spread,
                        )
                    )
                print(common.label(kind), runs[-1], flush=True)
            rows.append(
                [
                    common.label(kind),
                    args.messages,
                    *(common.with_spread([r[name] for r in runs]) for name in FIGURES),
                    " ".join(sorted({str(r["statuses"]) for r in runs})),
                ]
            )
    common.print_table(
        f"lateness (seconds, sent_at - due_at; lower is better), due over {args.start_in:g}-"
        f"{args.start_in + args.spread:g} s from now; median (min–max) of {args.runs} run(s)",
        [
            "database",
            "messages",
            *(f"{name} s (lower is better)" for name in FIGURES),
            "statuses",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
