"""Dispatch benchmark: M messages all due now, sent by one and by two worker processes.

Each worker process runs its own Dispatcher (claim, decide, render, send, record) until
nothing is due. Channels: the NullChannel, and the real TwilioSmsChannel against the Twilio
stand-in running in its own process. Afterwards every message must be "sent" exactly once
(and, for Twilio, recorded exactly once by the stand-in per recipient and body).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks import common
from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.channels.null import NullChannel
from reminders.dispatch.dispatcher import Dispatcher, DispatchSettings
from reminders.store.schema import Message
from reminders.store.storage import Storage
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

SENDER = "+15005550006"


def _channels(kind: str, twilio_url: str | None) -> dict[str, Channel]:
    if kind == "twilio":
        from reminders.channels.twilio_sms import TwilioSmsChannel

        sms: Channel = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=SENDER, base_url=twilio_url
        )
        return {"sms": sms, "email": NullChannel("email")}
    return {"sms": NullChannel("sms"), "email": NullChannel("email")}


def worker(
    url: str,
    plans: Path,
    templates: Path,
    channel: str,
    twilio_url: str | None,
    batch: int,
    start: Any,
) -> dict[str, Any]:
    """One worker process: wait until every worker is ready, then dispatch until nothing is due."""
    storage = Storage.open(url, migrate_schema=False)
    catalog = PlanCatalog(plans, templates)
    catalog.ids()
    dispatcher = Dispatcher(
        storage,
        catalog,
        _channels(channel, twilio_url),
        DispatchSettings(clinic=common.CLINIC, batch_size=batch),
    )
    start.wait()
    began = time.time()
    report = dispatcher.run_once()
    ended = time.time()
    for each in dispatcher.channels.values():
        each.close()
    storage.close()
    return {"began": began, "ended": ended, "outcomes": dict(report.outcomes)}


def run(
    kind: str,
    work: Path,
    plans: Path,
    templates: Path,
    plan_id: str,
    messages: int,
    workers: int,
    channel: str,
    batch: int,
) -> dict[str, Any]:
    """Enroll `messages` due SMS in a fresh database and time `workers` processes sending them."""
    record = work / f"standin-{common.label(kind)}-{channel}-{workers}.jsonl"
    with common.database(kind, work) as url:
        storage = Storage.open(url)
        now = datetime.now(UTC)
        common.enroll_due(
            storage,
            PlanCatalog(plans, templates),
            plan_id,
            [now - timedelta(seconds=30)] * messages,
        )
        context = multiprocessing.get_context("spawn")
        manager = context.Manager()
        start = manager.Barrier(workers)
        twilio = common.twilio_standin_process(record) if channel == "twilio" else None
        twilio_url = twilio.__enter__() if twilio else None
        try:
            with context.Pool(workers) as pool:
                pending = [
                    pool.apply_async(
                        worker, (url, plans, templates, channel, twilio_url, batch, start)
                    )
                    for _ in range(workers)
                ]
                results = [p.get(timeout=3600) for p in pending]
        finally:
            if twilio:
                twilio.__exit__(None, None, None)
            manager.shutdown()
        seconds = max(r["ended"] for r in results) - min(r["began"] for r in results)
        outcomes: Counter[str] = Counter()
        for result in results:
            outcomes.update(result["outcomes"])
        statuses = storage.message_views.status_counts()
        problems = []
        if statuses != {"sent": messages}:
            problems.append(f"statuses {statuses}")
        if outcomes != {"sent": messages}:
            problems.append(f"outcomes {dict(outcomes)}")
        if channel == "twilio":
            problems.extend(_check_standin(storage, record, messages))
        storage.close()
    return {
        "seconds": seconds,
        "per_worker": [r["outcomes"].get("sent", 0) for r in results],
        "check": "; ".join(problems) or "each sent once",
    }


def _check_standin(storage: Storage, record: Path, messages: int) -> list[str]:
    """Every outbox row's (recipient, body) reached the stand-in exactly once."""
    lines = [json.loads(line) for line in record.read_text().splitlines() if line]
    seen = Counter((item["to"], item["body"]) for item in lines)
    with storage.database.engine.connect() as connection:
        outbox = {tuple(row) for row in connection.execute(select(Message.recipient, Message.body))}
    problems = []
    if len(lines) != messages:
        problems.append(f"stand-in recorded {len(lines)} of {messages}")
    duplicates = sum(1 for count in seen.values() if count > 1)
    if duplicates:
        problems.append(f"{duplicates} sent more than once")
    if set(seen) != outbox:
        problems.append("stand-in records differ from the outbox")
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="due messages (null channel)")
    parser.add_argument(
        "--twilio-messages", type=int, default=4_000, help="due messages (Twilio stand-in)"
    )
    parser.add_argument("--workers", default="1,2", help="worker process counts, e.g. 1,2")
    parser.add_argument("--channels", default="null,twilio", help="null, twilio or both")
    parser.add_argument("--batch", type=int, default=200, help="claim batch size")
    parser.add_argument(
        "--database-url", help="one database to use (default: SQLite, and local PostgreSQL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    rows = []
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            for channel in args.channels.split(","):
                count = args.messages if channel == "null" else args.twilio_messages
                for workers in (int(w) for w in args.workers.split(",")):
                    result = run(
                        kind, work, plans, templates, plan_id, count, workers, channel, args.batch
                    )
                    rate = count / result["seconds"]
                    rows.append(
                        [
                            common.label(kind),
                            channel,
                            workers,
                            count,
                            result["seconds"],
                            rate,
                            rate / workers,
                            "/".join(str(n) for n in result["per_worker"]),
                            result["check"],
                        ]
                    )
                    print(rows[-1], flush=True)
    common.print_table(
        f"dispatch: messages due now, plan '{plan_id}', claim batch {args.batch}",
        [
            "database",
            "channel",
            "workers",
            "messages",
            "seconds",
            "msg/s",
            "msg/s/worker",
            "split",
            "check",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
