"""Inserting many rows at once: binary COPY on PostgreSQL, batched INSERTs elsewhere (and for
a few rows, where COPY's extra round trips cost more than they save: one enrollment from the API
or an HL7 feed).

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
from reminders.store.schema import UTCDateTime

Row = Mapping[str, Any]
COPY_FROM_ROWS = 100  # fewer rows go by INSERT on PostgreSQL too
_TIMESTAMPTZ = 1184  # PostgreSQL's type oids: timestamptz, and both timestamps
_TIMESTAMPS = {1114, _TIMESTAMPTZ}


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (every row with the same keys) in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if not _copies(session, rows):
        for chunk in chunks(rows, 2000):
            session.execute(insert(table), list(chunk))
        return
    dialect = connection.dialect
    given = list(rows[0])
    columns = [table.c[name] for name in given]
    columns += [c for c in table.columns if c.name not in given and _python_default(c)]
    names = ", ".join(f'"{column.name}"' for column in columns)
    dbapi_error = dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)'
    try:
        # Binary COPY needs each column's type: the server's own, read from a query of none.
        cursor.execute(f'SELECT {names} FROM "{table.name}" LIMIT 0')
        types = [column.type_code for column in cursor.description or ()]
        values = _column_values(columns, rows, types, dialect)
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in zip(*values, strict=True):
                write_row(row)
    except dbapi_error as exc:  # raised as SQLAlchemy raises any other statement's error
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from None
    finally:
        cursor.close()


def _column_values(
    columns: Sequence[Column[Any]], rows: Sequence[Row], types: list[int], dialect: Any
) -> list[Sequence[Any]]:
    """Each column's values as binary COPY takes them, in `types` (changed where it sends
    them as another type).

    Instants (UTCDateTime, stored as naive UTC in `timestamp` columns) go as they are, typed
    `timestamptz`: the driver sends an aware datetime's instant as microseconds since 2000 in
    UTC, the very bytes `timestamp` takes for that naive UTC value, whatever the datetime's
    zone; a naive one is refused (TypeError), as UTCDateTime refuses it. Other values go
    through their type's bind processor, once per distinct object (`now` on every row).
    """
    done: dict[type, dict[int, Any]] = {}
    values: list[Sequence[Any]] = []
    for index, column in enumerate(columns):
        name = column.name
        if name in rows[0]:
            raw = [row[name] for row in rows]
        else:
            default = _python_default(column)
            raw = [default() for _ in rows]
        if isinstance(column.type, UTCDateTime) and types[index] in _TIMESTAMPS:
            types[index] = _TIMESTAMPTZ
            values.append(raw)
        else:
            values.append(_bound(column, dialect, raw, done))
    return values


def insert_with_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Insert `rows` (same keys, no id) and give each one's `keys` values and new id.

    When copied (`insert_rows`), ids reserved from the table's sequence first, in row order;
    otherwise batched INSERT ... RETURNING.
    """
    if not rows:
        return []
    if not _copies(session, rows):
        returning = insert(table).returning(*(table.c[key] for key in keys), table.c.id)
        return [
            tuple(row) for chunk in chunks(rows, 2000) for row in session.execute(returning, chunk)
        ]
    ids = reserve_ids(session, table, len(rows))
    with_ids = [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)]
    insert_rows(session, table, with_ids)
    return [(*(row[key] for key in keys), row["id"]) for row in with_ids]


def _copies(session: Session, rows: Sequence[Any]) -> bool:
    """Whether `rows` go by COPY: on PostgreSQL, from COPY_FROM_ROWS rows."""
    return len(rows) >= COPY_FROM_ROWS and session.connection().dialect.name == "postgresql"


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
    column: Column[Any], dialect: Any, values: Sequence[Any], done: dict[type, dict[int, Any]]
) -> Sequence[Any]:
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
