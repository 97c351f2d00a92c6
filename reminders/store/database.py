"""The database handle: one engine and session factory, for SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, any_, bindparam, create_engine, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeEngine

from reminders.store import migrate
from reminders.store.changes import ChangeListener

CHUNK = 500

# The session of the unit of work in progress on this thread (or task), with its database and
# the thread it belongs to.
_UNIT: ContextVar[tuple[Database, Session, int] | None] = ContextVar("unit_of_work", default=None)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Slices of `items`, small enough for an IN (...) list or a batch insert."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def one_of(
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    name: str,
    *,
    arrays: bool,
    element: TypeEngine[Any] | None = None,
) -> ColumnElement[bool]:
    """`column` is one of the values bound as `name` (ids, or of the `element` type): on
    PostgreSQL (`arrays`) one array parameter, `= ANY(:name)`, so the statement's text stays
    short and the same whatever the number of values (parsed once by the driver); elsewhere
    an IN list expanded at each call."""
    if arrays:
        return column == any_(bindparam(name, type_=ARRAY(element or Integer())))
    return column.in_(bindparam(name, expanding=True))


def value_batches(items: Sequence[Any], *, arrays: bool) -> Iterator[Sequence[Any]]:
    """`items` in as few lookups as `one_of` allows: all at once when bound as one array
    (PostgreSQL), else slices small enough for an IN list."""
    if arrays:
        if items:
            yield items
        return
    yield from chunks(items)


class Database:
    """One engine and its session factory, shared by every repository of an app."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Database:
        """Connect and (by default) apply pending migrations."""
        database = cls(make_engine(url))
        if migrate_schema:
            migrate.upgrade(database.engine)
        return database

    @property
    def binds_arrays(self) -> bool:
        """Whether a list of ids is bound as one array parameter (PostgreSQL); see `one_of`."""
        return self.engine.dialect.name == "postgresql"

    @property
    def concurrent_writers(self) -> bool:
        """Several transactions may write at once (PostgreSQL); SQLite has one writer."""
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def change_listener(self, on_change: Callable[[], object]) -> ChangeListener | None:
        """A listener that calls `on_change` when another process changes patients or
        enrollments (PostgreSQL); None where the database cannot notify (SQLite)."""
        if self.engine.dialect.name != "postgresql":
            return None
        return ChangeListener(self.engine, on_change)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Inside `unit_of_work()` it is the unit's session, and the unit ends the transaction.
        """
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work in progress on this thread, or a new one for the block.

        What a service call does is then one transaction whether it is called alone (its own
        unit) or as part of a larger one (an HL7 message's), whose end commits it.
        """
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self.unit_of_work() as session:
            yield session

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction for everything the repositories do inside the block (on this thread).

        Every `session()` opened meanwhile joins it: all of it is committed at the end, or
        none of it when an exception leaves the block. A statement that fails inside voids the
        unit (PostgreSQL aborts the transaction), so its error must leave the block, not be
        caught within, unless it leaves a `savepoint()` first. Units do not nest.
        """
        if self._joined() is not None:
            raise RuntimeError("a unit of work is already in progress")
        with self._sessions() as session, session.begin():
            token = _UNIT.set((self, session, threading.get_ident()))
            try:
                yield session
            finally:
                _UNIT.reset(token)

    @contextmanager
    def savepoint(self) -> Iterator[Session]:
        """Inside the unit of work in progress, a savepoint of it: an error leaving the block
        undoes what the block wrote and nothing else, and the unit goes on (on PostgreSQL too,
        where a failed statement otherwise voids the transaction). Outside one, the block's
        own transaction."""
        joined = self._joined()
        if joined is None:
            with self.transaction() as session:
                yield session
            return
        with joined.begin_nested():
            yield joined

    @contextmanager
    def rolled_back(self) -> Iterator[Session]:
        """A session whose changes are undone at the end (a dry run); inside a unit of work,
        a savepoint of the unit's transaction."""
        joined = self._joined()
        if joined is not None:
            savepoint = joined.begin_nested()
            try:
                yield joined
            finally:
                savepoint.rollback()
            return
        with self._sessions() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()

    def _joined(self) -> Session | None:
        """The unit's session, when one of this database is in progress on this thread (a
        thread that inherits a context does not share its session)."""
        unit = _UNIT.get()
        if unit is None or unit[0] is not self or unit[2] != threading.get_ident():
            return None
        return unit[1]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys, its folder created.

    Its errors never show SQL parameters (patient data) in their text.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's own BEGIN drive transactions, and take the write lock at BEGIN
            # so that two workers never interleave a claim.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No server-side prepared statements: their cached generic plans, made while the tables
    # were small, went stale as a bulk import grew them (each batch slower than the last).
    connect_args = {"prepare_threshold": None} if parsed.get_driver_name() == "psycopg" else {}
    # hide_parameters: a database error's text never carries names, phones or emails.
    return create_engine(
        url, pool_pre_ping=True, connect_args=connect_args, hide_parameters=True, **kwargs
    )


def database_reachable(url: str, timeout_seconds: int = 3) -> bool:
    """Whether a database server answers at this URL (for skipping tests and benchmarks)."""
    connect_args = {"connect_timeout": timeout_seconds} if url.startswith("postgresql") else {}
    try:
        engine = create_engine(url, connect_args=connect_args)
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        engine.dispose()
        return True
    except Exception:
        return False


def ping(engine: Engine) -> None:
    """Run `SELECT 1`; raises the driver's error when the database does not answer."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
