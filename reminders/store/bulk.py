"""Inserting many rows at once: COPY on PostgreSQL, batched INSERTs elsewhere.

COPY is all or nothing: one refused row fails the whole statement and its transaction, as a
batched INSERT does; callers that must keep the good rows (the CSV import) fall back to
enrolling row by row on any database error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from reminders.store.database import chunks

Row = Mapping[str, Any]


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (every row with the same keys) in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for chunk in chunks(rows, 2000):
            session.execute(insert(table), list(chunk))
        return
    given = list(rows[0])
    defaulted = [c for c in table.columns if c.name not in given and _python_default(c)]
    columns = [table.c[name] for name in given] + defaulted
    names = ", ".join(f'"{column.name}"' for column in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    # Per row, only what differs by row: one conversion per value, worked out once per call.
    cells = [_cell(table.c[name], connection.dialect, name) for name in given]
    cells += [_cell(column, connection.dialect, None) for column in defaulted]
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row([cell(row) for cell in cells])
    except dbapi_error as exc:  # raised as SQLAlchemy raises any other statement's error
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None


def _cell(column: Column[Any], dialect: Any, name: str | None) -> Callable[[Row], Any]:
    """A function of a row giving `column`'s value as the database takes it: the row's value
    under `name` (None: the column's Python default), through the type's bind processor."""
    bind = column.type.bind_processor(dialect)
    if name is None:
        default = _python_default(column)
        return (lambda row: bind(default())) if bind else (lambda row: default())
    key = name
    return (lambda row: bind(row[key])) if bind else operator.itemgetter(key)


def _python_default(column: Column[Any]) -> Any:
    """A column's Python-side default as a zero-argument callable (None without one)."""
    default = column.default
    if default is None or not getattr(default, "is_callable", False):
        return None
    arg = default.arg  # type: ignore[attr-defined]
    return lambda: arg(None)
