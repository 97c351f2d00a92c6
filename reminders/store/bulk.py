"""Inserting many rows at once: COPY on PostgreSQL, batched INSERTs elsewhere.

COPY is all or nothing: one refused row fails the whole statement and its transaction, as a
batched INSERT does; callers that must keep the good rows (the CSV import) fall back to
enrolling row by row on any database error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from reminders.store.database import chunks


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
    binds = [column.type.bind_processor(connection.dialect) for column in columns]
    names = ", ".join(f'"{column.name}"' for column in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in given] + [_python_default(c)() for c in defaulted]
                copy.write_row(
                    [bind(v) if bind else v for bind, v in zip(binds, values, strict=True)]
                )
    except dbapi_error as exc:  # raised as SQLAlchemy raises any other statement's error
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None


def _python_default(column: Column[Any]) -> Any:
    """A column's Python-side default as a zero-argument callable (None without one)."""
    default = column.default
    if default is None or not getattr(default, "is_callable", False):
        return None
    arg = default.arg  # type: ignore[attr-defined]
    return lambda: arg(None)
