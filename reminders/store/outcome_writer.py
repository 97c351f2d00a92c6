"""Writing what became of claimed messages: many outcomes in one transaction.

Every outcome updates a row only while it is still "sending" (and, when a worker is named,
still claimed by that worker), so a claim another worker took over is left to it. Statements
are built once per set of columns. On PostgreSQL each set is one UPDATE ... FROM unnest(arrays)
statement (one parse and plan for a whole batch, instead of one per message); on SQLite, in
process, each set is one executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Table, bindparam, case, column, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from reminders.store.database import Database
from reminders.store.schema import Message, MessageStatus

MESSAGES: Table = Message.__table__  # type: ignore[assignment]

# The value of `attempts` for an outcome that does not count the claim as a try (a deferral).
ATTEMPT_NOT_COUNTED = MESSAGES.c.attempts - 1


@dataclass(frozen=True)
class Outcome:
    """The new column values of one claimed message; `worker` must still hold its claim."""

    message_id: int
    worker: str | None
    values: dict[str, Any]


class OutcomeWriter:
    """Writes outcomes, reusing one UPDATE statement per set of columns."""

    def __init__(self) -> None:
        self._statements: dict[tuple[Any, ...], Any] = {}

    def write(self, database: Database, outcomes: Sequence[Outcome]) -> None:
        """Write every outcome in one transaction: one statement per set of columns (on
        PostgreSQL) or one executemany (SQLite). A message's first outcome wins, as when each
        was written in turn (the second found the row no longer "sending")."""
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        expressions: dict[tuple[Any, ...], dict[str, ClauseElement]] = {}
        seen: set[int] = set()
        for outcome in outcomes:
            if outcome.message_id in seen:
                continue
            seen.add(outcome.message_id)
            plain = {k: v for k, v in outcome.values.items() if not isinstance(v, ClauseElement)}
            fixed = {k: v for k, v in outcome.values.items() if isinstance(v, ClauseElement)}
            key = (
                tuple(sorted(plain)),
                tuple(sorted((name, id(value)) for name, value in fixed.items())),
                outcome.worker is not None,
            )
            expressions[key] = fixed
            params = {"message_id": outcome.message_id, "claim_worker": outcome.worker, **plain}
            groups.setdefault(key, []).append(params)
        as_arrays = database.engine.dialect.name == "postgresql"
        with database.engine.begin() as connection:
            for key, rows in groups.items():
                if as_arrays:
                    columns = {name: [row[name] for row in rows] for name in rows[0]}
                    connection.execute(self._statement(key, expressions[key], True), columns)
                else:
                    connection.execute(self._statement(key, expressions[key], False), rows)

    def _statement(
        self, key: tuple[Any, ...], fixed: dict[str, ClauseElement], arrays: bool
    ) -> Any:
        statement = self._statements.get((key, arrays))
        if statement is None:
            build = _update_from_arrays if arrays else _update_one
            statement = build(key[0], fixed, by_worker=key[2])
            self._statements[(key, arrays)] = statement
        return statement


def _never_narrower(name: str, value: Any) -> Any:
    """An outcome widens a message's window (a cap deferral past it), never narrows it: the
    window it was decided on may have been moved later meanwhile (a reschedule retimes a held
    message), and that one stands."""
    if name != "send_before":
        return value
    return case((MESSAGES.c.send_before > value, MESSAGES.c.send_before), else_=value)


def _update_one(columns: Sequence[str], fixed: dict[str, ClauseElement], *, by_worker: bool) -> Any:
    """UPDATE of one message, its values bound by name (for executemany)."""
    values: dict[str, Any] = {
        name: _never_narrower(name, bindparam(name, type_=MESSAGES.c[name].type))
        for name in columns
    }
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id == bindparam("message_id"))
        .where(MESSAGES.c.status == MessageStatus.SENDING.value)
        .values({**values, **fixed})
    )
    if by_worker:
        statement = statement.where(MESSAGES.c.claimed_by == bindparam("claim_worker"))
    return statement


def _update_from_arrays(
    columns: Sequence[str], fixed: dict[str, ClauseElement], *, by_worker: bool
) -> Any:
    """UPDATE of many messages at once: each parameter is an array, one element a message,
    read as rows by unnest (PostgreSQL)."""
    types: dict[str, TypeEngine[Any]] = {"message_id": Integer(), "claim_worker": String()}
    types.update({name: MESSAGES.c[name].type for name in columns})
    rows = (
        func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in types.items()))
        .table_valued(*(column(name, kind) for name, kind in types.items()))
        .render_derived(name="outcome")
    )
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id == rows.c.message_id)
        .where(MESSAGES.c.status == MessageStatus.SENDING.value)
        .values({**{name: _never_narrower(name, rows.c[name]) for name in columns}, **fixed})
    )
    if by_worker:
        statement = statement.where(MESSAGES.c.claimed_by == rows.c.claim_worker)
    return statement


class OutcomeGroup:
    """Outcomes held in memory until `flush` writes them together (one commit for many).

    Safe only where a crash before the flush costs no second delivery: the rows stay
    "sending" and are reconciled with the provider before any resend (see dispatcher.py).
    """

    def __init__(
        self, database: Database, writer: OutcomeWriter, clock: Callable[[], datetime]
    ) -> None:
        self.database = database
        self.writer = writer
        self.clock = clock
        self._pending: list[Outcome] = []
        self._oldest: datetime | None = None

    def add(self, outcome: Outcome) -> None:
        """Hold one outcome until the next flush."""
        if not self._pending:
            self._oldest = self.clock()
        self._pending.append(outcome)

    def __len__(self) -> int:
        return len(self._pending)

    def waited(self) -> timedelta:
        """How long the oldest held outcome has waited (zero when none)."""
        return self.clock() - self._oldest if self._pending and self._oldest else timedelta(0)

    def flush(self) -> int:
        """Write every held outcome in one transaction; returns how many. A failed write
        drops them: their rows stay "sending", to be reconciled like after a crash."""
        pending, self._pending = self._pending, []
        if pending:
            self.writer.write(self.database, pending)
        return len(pending)
