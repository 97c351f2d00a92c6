"""Helpers for tests that force two transactions to race: run one on a thread, with its
errors kept for the test, and see from outside whether PostgreSQL made one wait."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import text

from reminders.store.database import Database

WAIT = 20.0  # seconds; only reached when something hangs


def in_thread(work: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    """Start `work` on a daemon thread; what it raises goes to `errors`, not lost."""

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test, not lost on the thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def waiting_for(database: Database, pid: int | None) -> bool:
    """Whether a transaction waits for a lock the one on backend `pid` holds (PostgreSQL)."""
    with database.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks "
                "WHERE NOT granted AND :pid = ANY(pg_blocking_pids(pid))"
            ),
            {"pid": pid},
        ).scalar_one()
    return bool(waiting)
