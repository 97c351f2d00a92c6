"""Dispatch benchmark: M due messages, sent by one and by two worker processes.

Each worker process runs its own Dispatcher (claim, decide, render, send, record) until
nothing is due. Channels: the NullChannel, and the real TwilioSmsChannel against the Twilio
stand-in running in its own process. Two workloads (`--workload`):

- now: M SMS due at one instant to M different patients, none texted before (all sent);
- day: a realistic day (`benchmarks/day_workload.py`): a 9:00 local wave in four zones,
  dispatched wave by wave with the clock moved to each, most patients texted earlier so every
  message reads SMS history and checks the caps; 1 in 10 waits for a cap (deferred). The
  workers move their clocks together: each waits at a barrier until every worker has finished
  the wave before jumping to the next. (A worker that jumped an hour ahead alone saw the
  other's claims in progress as abandoned, took them over and sent them again.)

On PostgreSQL the tables are ANALYZEd after the messages are enqueued (as autovacuum would),
before the clock starts. Afterwards every message must have had its expected outcome exactly
once, and the channel must have been handed each sent message once (for Twilio: recorded once
by the stand-in per recipient and body). A failed check is printed in the run's line and the
table, and the script then exits with status 1. msg/s counts every message decided (sent or
deferred).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from benchmarks import common, day_workload
from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.channels.null import NullChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.schema import Message
from reminders.store.storage import Storage
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

SENDER = "+15005550006"
WORKLOADS = ("now", "day")
CHANNELS = ("null", "twilio")


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
    waves: list[datetime] | None = None,
) -> dict[str, Any]:
    """One worker process: wait until every worker is ready, then dispatch until nothing is due
    (with `waves`: with the clock at each wave's instant in turn, every worker together: the
    barrier `start` is passed again before each wave, once all have finished the last)."""
    storage = Storage.open(url, migrate_schema=False)
    catalog = PlanCatalog(plans, templates)
    catalog.ids()
    clock = day_workload.SimulatedClock()
    dispatcher = Dispatcher(
        storage,
        catalog,
        _channels(channel, twilio_url),
        DispatchSettings(clinic=common.CLINIC, batch_size=batch),
        clock=clock,
    )
    start.wait()
    began = time.time()
    outcomes: Counter[str] = Counter()
    for number, wave in enumerate(waves or [None]):
        if wave is not None:
            if number:
                start.wait()  # every worker is done with the last wave: no claim left open
            clock.jump_to(wave + timedelta(seconds=1))
        outcomes.update(dispatcher.run_once().outcomes)
    ended = time.time()
    handed = [each.sent for each in dispatcher.channels.values() if isinstance(each, NullChannel)]
    for each in dispatcher.channels.values():
        each.close()
    storage.close()
    return {"began": began, "ended": ended, "outcomes": dict(outcomes), "handed": sum(handed)}


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
    workload: str = "now",
) -> dict[str, Any]:
    """Enroll `messages` due SMS in a fresh database and time `workers` processes sending them."""
    record = work / f"standin-{common.label(kind)}-{channel}-{workers}-{workload}.jsonl"
    record.unlink(missing_ok=True)
    with common.database(kind, work) as url:
        storage = Storage.open(url)
        now = datetime.now(UTC)
        catalog = PlanCatalog(plans, templates)
        waves: list[datetime] | None = None
        if workload == "day":
            day = day_workload.enroll_day(storage, catalog, plan_id, messages, now.date())
            waves = day.waves
            expected = Counter(sent=day.sent, deferred=day.deferred)
            statuses_expected = Counter(sent=day.earlier + day.sent, pending=day.deferred)
        else:
            common.enroll_due(storage, catalog, plan_id, [now - timedelta(seconds=30)] * messages)
            expected = Counter(sent=messages)
            statuses_expected = Counter(sent=messages)
        if storage.database.engine.dialect.name == "postgresql":
            with storage.database.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        context = multiprocessing.get_context("spawn")
        manager = context.Manager()
        start = manager.Barrier(workers)
        twilio = common.twilio_standin_process(record) if channel == "twilio" else None
        twilio_url = twilio.__enter__() if twilio else None
        try:
            with context.Pool(workers) as pool:
                pending = [
                    pool.apply_async(
                        worker, (url, plans, templates, channel, twilio_url, batch, start, waves)
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
        if statuses != statuses_expected:
            problems.append(f"statuses {statuses}")
        if outcomes != expected:
            problems.append(
                f"outcomes {_outcome_text(dict(outcomes))}, expected {_outcome_text(expected)}"
            )
        if channel == "twilio":
            problems.extend(_check_standin(storage, record, expected["sent"]))
        else:
            handed = sum(r["handed"] for r in results)
            if handed != expected["sent"]:
                problems.append(f"null channel handed {handed} texts for {expected['sent']}")
        storage.close()
    return {
        "seconds": seconds,
        "per_worker": [sum(r["outcomes"].values()) for r in results],
        "outcomes": dict(outcomes),
        "check": "CHECK FAILED: " + "; ".join(problems)
        if problems
        else ("each sent once" if workload == "now" else "each sent or deferred once"),
        "failed": bool(problems),
    }


def _check_standin(storage: Storage, record: Path, messages: int) -> list[str]:
    """Every sent outbox row's (recipient, body) reached the stand-in exactly once."""
    lines = [json.loads(line) for line in record.read_text().splitlines() if line]
    seen = Counter((item["to"], item["body"]) for item in lines)
    query = select(Message.recipient, Message.body).where(Message.body.is_not(None))
    with storage.database.engine.connect() as connection:
        outbox = {tuple(row) for row in connection.execute(query)}
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
    parser.add_argument(
        "--channels", default="null,twilio", help="null, twilio, or both (= null,twilio)"
    )
    parser.add_argument(
        "--workload",
        default="now,day",
        help="now (all due at one instant), day (a realistic day), or both (= now,day)",
    )
    parser.add_argument("--batch", type=int, default=200, help="claim batch size")
    parser.add_argument(
        "--database-url", help="one database to use (default: SQLite, and local PostgreSQL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    common.runs_argument(parser)
    args = parser.parse_args(argv)
    workloads = _choices(parser, "--workload", args.workload, WORKLOADS)
    channels = _choices(parser, "--channels", args.channels, CHANNELS)
    failed: list[str] = []
    rows = []
    rates: dict[tuple[str, str, int, str], list[float]] = {}
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        for kind in common.database_kinds(args.database_url, not args.sqlite_only):
            for channel in channels:
                count = args.messages if channel == "null" else args.twilio_messages
                for workers in (int(w) for w in args.workers.split(",")):
                    for workload in workloads:
                        runs = []
                        for _ in range(args.runs):
                            runs.append(
                                run(
                                    kind,
                                    work,
                                    plans,
                                    templates,
                                    plan_id,
                                    count,
                                    workers,
                                    channel,
                                    args.batch,
                                    workload,
                                )
                            )
                            seconds = runs[-1]["seconds"]
                            if runs[-1]["failed"]:
                                failed.append(
                                    f"{common.label(kind)}, {channel}, {workers} worker(s), "
                                    f"{workload}: {runs[-1]['check']}"
                                )
                            print(
                                [
                                    common.label(kind),
                                    channel,
                                    workers,
                                    count,
                                    workload,
                                    round(count / seconds),
                                    runs[-1]["check"],
                                ],
                                flush=True,
                            )
                        per_second = [count / r["seconds"] for r in runs]
                        rates[(common.label(kind), channel, workers, workload)] = per_second
                        checks = sorted({r["check"] for r in runs})
                        rows.append(
                            [
                                common.label(kind),
                                channel,
                                workers,
                                workload,
                                count,
                                common.with_spread(per_second),
                                common.with_spread([r / workers for r in per_second]),
                                " ".join("/".join(str(n) for n in r["per_worker"]) for r in runs),
                                _outcome_text(runs[0]["outcomes"]),
                                "; ".join(checks),
                            ]
                        )
    common.print_table(
        f"dispatch, plan '{plan_id}', claim batch {args.batch}: median (min–max) of "
        f"{args.runs} run(s); msg/s higher is better",
        [
            "database",
            "channel",
            "workers",
            "workload",
            "messages",
            "msg/s",
            "msg/s/worker",
            "split (each run)",
            "outcomes",
            "check",
        ],
        rows,
    )
    ratios = [
        [database, channel, workers, _ratio_text(day, rates[(database, channel, workers, "now")])]
        for (database, channel, workers, workload), day in rates.items()
        if workload == "day" and (database, channel, workers, "now") in rates
    ]
    if ratios:
        common.print_table(
            "realistic day ÷ all at once (median of the runs' rates; target >= 0.60)",
            ["database", "channel", "workers", "day ÷ now"],
            ratios,
        )
    if failed:
        print("CHECK FAILED (figures above are not valid):", *failed, sep="\n  ", file=sys.stderr)
        raise SystemExit(1)


def _choices(
    parser: argparse.ArgumentParser, flag: str, value: str, known: tuple[str, ...]
) -> list[str]:
    """A comma-separated option's names, "both" meaning all of `known`; others refused."""
    names = [name.strip() for name in value.split(",")]
    if names == ["both"]:
        return list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(
            f"{flag}: unknown {', '.join(map(repr, unknown))}; "
            f"use {', '.join(known)} (comma-separated) or both"
        )
    return list(dict.fromkeys(names))


def _outcome_text(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in sorted(outcomes.items()))


def _ratio_text(day: list[float], now: list[float]) -> str:
    ratio = statistics.median(day) / statistics.median(now)
    return f"{ratio:.2f} ({'met' if ratio >= 0.6 else 'missed'})"


if __name__ == "__main__":
    main()
