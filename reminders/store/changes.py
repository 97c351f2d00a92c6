"""Hearing about outbox changes made by other processes (PostgreSQL LISTEN/NOTIFY).

Migration 0006 makes every write to patients or enrollments (enrolling, rescheduling,
cancelling, opting out or in, a plan rollout) send a notification on `CHANNEL` when its
transaction commits, with the schema as payload; keeping a delivery report until its send is
recorded sends the same (`notify_dispatchers`), since the pass that follows applies it. A
dispatcher listens on its own connection and wakes at once instead of at its next idle poll,
which stays as the fall-back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "reminders_outbox"
RECONNECT_SECONDS = 5.0


def notify_dispatchers(session: Session) -> None:
    """Wake the listening dispatchers when this session's transaction commits (PostgreSQL; the
    payload is the schema, as migration 0006's triggers send). Elsewhere nothing: SQLite
    dispatchers in other processes notice at their idle poll."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, current_schema())"), {"channel": CHANNEL})


class ChangeListener:
    """A thread holding one connection that LISTENs for outbox changes and calls back."""

    def __init__(self, engine: Engine, on_change: Callable[[], object]) -> None:
        self.engine = engine
        self.on_change = on_change
        self.heard = 0
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen in a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connection (within about a second)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:  # the database may be away; the idle poll still runs meanwhile
                log.warning("outbox listener lost its connection; retrying", exc_info=True)
                self.listening.clear()
                self._stop.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            connection = cast(psycopg.Connection[Any], raw.driver_connection)
            connection.autocommit = True
            row = connection.execute("SELECT current_schema()").fetchone()
            schema = row[0] if row else None
            connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while not self._stop.is_set():
                # Wakes within a second to notice `stop`; each notification is acted on at once.
                for notification in connection.notifies(timeout=1.0):
                    if notification.payload == schema:
                        self.heard += 1
                        self.on_change()
        finally:
            self.listening.clear()
            raw.invalidate()
