"""Helpers for tests that force two transactions to race: run one on a thread, with its
errors kept for the test, and see from outside whether PostgreSQL made one wait."""

from __future__ import annotations

import threading
import time
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


def race(
    first: Callable[[], object],
    second: Callable[[], object],
    *,
    reached: threading.Event,
    go: threading.Event,
    second_waits: Callable[[], bool] | None,
) -> list[BaseException]:
    """Run `first` until it pauses (`reached`), then `second`; let `second` run until it is
    done (the race lost) or `second_waits()` sees it waiting for the first (the lock held);
    then `go` lets the first commit. What the two raised, once both have ended."""
    errors: list[BaseException] = []
    first_thread = in_thread(first, errors)
    assert reached.wait(WAIT), f"the first transaction never got there: {errors}"
    second_thread = in_thread(second, errors)
    if second_waits is not None:
        deadline = time.monotonic() + WAIT
        while second_thread.is_alive() and not second_waits():
            assert time.monotonic() < deadline, "the second neither finished nor waited"
            second_thread.join(0.02)
    go.set()
    first_thread.join(WAIT)
    second_thread.join(WAIT)
    assert not first_thread.is_alive() and not second_thread.is_alive(), "a transaction hung"
    return errors
