"""Inserting many rows at once: binary COPY on PostgreSQL, batched INSERTs elsewhere.

COPY is all or nothing: one refused row fails the whole statement and its transaction, as a
batched INSERT does; callers that must keep the good rows (the CSV import) fall back to
enrolling row by row on any database error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, insert, text
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
    dialect = connection.dialect
    given = list(rows[0])
    defaulted = [c for c in table.columns if c.name not in given and _python_default(c)]
    names = ", ".join(f'"{name}"' for name in [*given, *(c.name for c in defaulted)])
    # Column by column: each value through its type's bind processor, once per distinct
    # object and type (`now` on every row, an instant in two columns: converted once).
    done: dict[type, dict[int, Any]] = {}
    values = [_bound(table.c[name], dialect, [row[name] for row in rows], done) for name in given]
    for column in defaulted:
        default = _python_default(column)
        values.append(_bound(column, dialect, [default() for _ in rows], done))
    dbapi_error = dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)'
    try:
        # Binary COPY needs each column's type: the server's own, read from a query of none.
        cursor.execute(f'SELECT {names} FROM "{table.name}" LIMIT 0')
        types = [column.type_code for column in cursor.description or ()]
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in zip(*values, strict=True):
                write_row(row)
    except dbapi_error as exc:  # raised as SQLAlchemy raises any other statement's error
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None
    finally:
        cursor.close()


def insert_with_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Insert `rows` (same keys, no id) and give each one's `keys` values and new id.

    PostgreSQL: ids reserved from the table's sequence, in row order, and the rows copied with
    them (`insert_rows`); elsewhere batched INSERT ... RETURNING.
    """
    if not rows:
        return []
    if session.connection().dialect.name != "postgresql":
        returning = insert(table).returning(*(table.c[key] for key in keys), table.c.id)
        return [
            tuple(row) for chunk in chunks(rows, 2000) for row in session.execute(returning, chunk)
        ]
    ids = reserve_ids(session, table, len(rows))
    with_ids = [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)]
    insert_rows(session, table, with_ids)
    return [(*(row[key] for key in keys), row["id"]) for row in with_ids]


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` new ids of `table` (PostgreSQL), in ascending order, from its id sequence: rows
    given them can then be inserted by `insert_rows` without asking the ids back."""
    if count == 0:
        return []
    rows = session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": count},
    )
    return sorted(rows.scalars())


def _bound(
    column: Column[Any], dialect: Any, values: list[Any], done: dict[type, dict[int, Any]]
) -> list[Any]:
    """`values` of `column` as the database takes them (through the type's bind processor),
    remembering in `done` each object's conversion by (type of the column, id of the object):
    the rows keep every object alive meanwhile, so no id is reused."""
    bind: Callable[[Any], Any] | None = column.type._cached_bind_processor(dialect)
    if bind is None:
        return values
    converted = done.setdefault(type(column.type), {})
    out = []
    for value in values:
        key = id(value)
        if key not in converted:
            converted[key] = bind(value)
        out.append(converted[key])
    return out


def _python_default(column: Column[Any]) -> Any:
    """A column's Python-side default as a zero-argument callable (None without one)."""
    default = column.default
    if default is None or not getattr(default, "is_callable", False):
        return None
    arg = default.arg  # type: ignore[attr-defined]
    return lambda: arg(None)
