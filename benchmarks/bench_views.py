"""Staff list views and the claim at size: N patients x 13 messages, each view timed.

Rows are generated in SQL (not through enrollment, which bench_import measures), then
ANALYZEd. Each view is called through its repository; the figure is the median wall time of
the call over `--runs`, and on PostgreSQL also the summed EXPLAIN ANALYZE execution time of its
statements (query time only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, text

from benchmarks import common
from reminders.schedule_diff import MessageStatus
from reminders.store.database import chunks
from reminders.store.message_records import MessageCursor
from reminders.store.storage import Storage

STEPS = 13
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _instant(dialect: str, seconds: str) -> str:
    if dialect == "postgresql":
        return f"(timestamp '2026-03-01 00:00:00' + make_interval(secs => {seconds}))"
    return f"strftime('%Y-%m-%d %H:%M:%f', '2026-03-01', '+' || ({seconds}) || ' seconds')"


def _padded(dialect: str, number: str) -> str:
    if dialect == "postgresql":
        return f"lpad(({number})::text, 7, '0')"
    return f"substr('0000000' || ({number}), -7, 7)"


def fill(engine: Engine, patients: int) -> None:
    """`patients` patients, one enrollment each, 13 messages each (3 sent, a few failed)."""
    d = engine.dialect.name
    series = (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {patients}) "
    )
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO patients (id, external_id, first_name, phone, timezone, language, "
                "preferred_channel, sms_consent, attributes, created_at, updated_at) "
                f"{series}SELECT i, 'P-' || {_padded(d, 'i')}, 'Maria', "
                f"'+1202' || {_padded(d, 'i')}, 'America/Chicago', 'en', 'sms', "
                f"true, '{{}}', {_instant(d, '0')}, {_instant(d, '0')} FROM n"
            )
        )
        c.execute(
            text(
                "INSERT INTO enrollments (id, patient_id, plan_id, plan_version, procedure_date, "
                "status, created_at, updated_at) SELECT id, id, 'mild', 1, '2026-03-10', "
                f"'active', {_instant(d, '0')}, {_instant(d, '0')} FROM patients"
            )
        )
        number = f"(p.id * {STEPS} + k.k)"
        c.execute(
            text(
                "INSERT INTO messages (id, enrollment_id, patient_id, plan_id, plan_version, "
                "step_id, phase, channel, template, language, due_at, send_before, "
                "next_attempt_at, status, attempts, uid, created_at, updated_at) "
                "WITH RECURSIVE k(k) AS "
                f"(SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < {STEPS}) "
                f"SELECT {number}, p.id, p.id, 'mild', 1, 'step-' || k.k, 'recovery', 'sms', "
                f"'t', 'en', {_instant(d, f'{number} % 86400 + 86400')}, "
                f"{_instant(d, f'{number} % 86400 + 172800')}, "
                f"{_instant(d, f'{number} % 86400 + 86400')}, "
                f"CASE WHEN k.k <= 3 THEN 'sent' WHEN {number} % 997 = 0 THEN 'failed' "
                "ELSE 'pending' END, 0, 'u' || "
                f"{number}, {_instant(d, '0')}, {_instant(d, f'{number} % 100000')} "
                "FROM patients p CROSS JOIN k"
            )
        )
        c.execute(
            text("ANALYZE patients, enrollments, messages" if d == "postgresql" else "ANALYZE")
        )


VIEWS: dict[str, Callable[[Storage], object]] = {
    "reminders patients (first page, 500)": lambda s: s.patient_lists.list_patients(500),
    "reminders patients --limit 1": lambda s: s.patient_lists.list_patients(1),
    "reminders patients --after P-0050000": lambda s: s.patient_lists.list_patients(
        500, after="P-0050000"
    ),
    "reminders messages (500)": lambda s: s.message_views.list_messages(limit=500),
    "reminders messages --status failed": lambda s: s.message_views.list_messages(
        status=MessageStatus.FAILED, limit=500
    ),
    "reminders messages --status sent": lambda s: s.message_views.list_messages(
        status=MessageStatus.SENT, limit=500
    ),
    "reminders messages --since (1 h)": lambda s: s.message_views.list_messages(
        since=datetime(2026, 3, 1, 23, tzinfo=UTC), limit=500
    ),
    "reminders messages --before (page 2)": lambda s: s.message_views.list_messages(
        limit=500, before=MessageCursor(datetime(2026, 3, 1, 20, tzinfo=UTC), 10**9)
    ),
    "GET /v1/replies, /outcomes, /flags": lambda s: (
        s.inbound.list_inbound(limit=500),
        s.outcomes.list_outcomes(limit=500),
        s.outcomes.list_flags(open_only=True, limit=500),
    ),
    "claim 200 of the wave due (put back after)": lambda s: _claim_measured(s),
}


def _explain_ms(engine: Engine, statements: list[tuple[str, Any]]) -> float:
    total = 0.0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            total += float(plan[0]["Execution Time"])
    finally:
        raw.rollback()
        raw.close()
    return total


def measure(url: str, runs: int) -> list[list[Any]]:
    storage = Storage.open(url)
    engine = storage.database.engine
    rows = []
    for name, view in VIEWS.items():
        call = view
        walls, explains = [], []
        for _ in range(runs):
            captured: list[tuple[str, Any]] = []

            def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
                if statement.lstrip().upper().startswith("SELECT"):
                    captured.append((statement, parameters))  # noqa: B023

            event.listen(engine, "before_cursor_execute", capture)
            started = time.perf_counter()
            call(storage)
            walls.append((time.perf_counter() - started) * 1000)
            event.remove(engine, "before_cursor_execute", capture)
            if engine.dialect.name == "postgresql" and not name.startswith("claim"):
                explains.append(_explain_ms(engine, captured))
        explain = f"{statistics.median(explains):.2f}" if explains else "-"
        rows.append(
            [name, f"{statistics.median(walls):.1f}", f"{min(walls):.1f}-{max(walls):.1f}", explain]
        )
    storage.close()
    return rows


def _claim_measured(storage: Storage) -> None:
    """Claim a batch of 200 from a wave, then put the rows back to pending."""
    claimed = storage.outbox.claim_due(NOW + timedelta(days=3), "bench", 200)
    ids = [m.id for m in claimed]
    with storage.database.engine.begin() as c:
        for chunk in chunks(ids):
            c.execute(
                text(
                    "UPDATE messages SET status = 'pending', claimed_by = NULL, "
                    "claimed_at = NULL WHERE id IN (" + ",".join(map(str, chunk)) + ")"
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", help="one database (default: SQLite and PostgreSQL)")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    kinds = common.database_kinds(args.database_url, include_postgres=not args.sqlite_only)
    with common.workdir() as work:
        for kind in kinds:
            with common.database(kind, work) as url:
                storage = Storage.open(url)
                started = time.perf_counter()
                fill(storage.database.engine, args.patients)
                storage.close()
                print(
                    f"{common.label(kind)}: {args.patients:,} patients, "
                    f"{args.patients * STEPS:,} messages generated in "
                    f"{time.perf_counter() - started:.0f} s"
                )
                common.print_table(
                    f"{common.label(kind)}: list views, median of {args.runs} runs",
                    ["view", "wall ms (median)", "spread ms", "query ms (EXPLAIN ANALYZE)"],
                    measure(url, args.runs),
                )


if __name__ == "__main__":
    main()
