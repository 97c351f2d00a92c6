"""Shared fixtures: a real database (SQLite file, and PostgreSQL where the server runs), and
the running service (`world`) that the API, webhook and reply tests drive."""

from __future__ import annotations

import functools
import gc
import importlib
import os
import pkgutil
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import _pytest.timing
import pytest
from api_fixtures import World, running_world
from sqlalchemy import Engine, create_engine, make_url, text

from reminders.store.database import database_reachable, make_engine
from reminders.store.storage import Storage

pytest_plugins = ["reminders.testing.pytest_plugin", "console_browser_fixtures"]


def _import_every_module() -> None:
    """The CLI imports most of the application on first use (to start fast). A first import
    inside a test's freeze_time would build pydantic models around freezegun's fake date
    class, so every module is imported here, before any test runs."""
    import reminders

    for module in pkgutil.walk_packages(reminders.__path__, "reminders."):
        skipped = (".migrations", "__main__", "pytest_plugin")
        if not any(part in module.name for part in skipped):
            importlib.import_module(module.name)


_import_every_module()

# pytest times each phase with the functions _pytest.timing took from the time module. Freezing
# a clock replaces every module's reference to those functions, so a clock frozen in a fixture
# made `pytest --durations` report the frozen instant (about 1.77e9 s) as a setup's duration.
# Wrapped, they are no longer the functions freezegun looks for, and stay real. (Its ignore list
# is no help: it also makes code called from a test body, within a few frames, see real time.)
_pytest.timing.perf_counter = functools.partial(time.perf_counter)
_pytest.timing.time = functools.partial(time.time)

POSTGRES_URL = os.environ.get(
    "REMINDERS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOW_TO_RUN_POSTGRES = (
    "PostgreSQL is not reachable at {url}: start it (on Debian: pg_ctlcluster <version> main "
    "start; `bash scripts/test.sh` does) and create the database {database!r} with trust auth "
    "for its user, or point REMINDERS_TEST_POSTGRES_URL at another server."
)


_PG_OK: bool | None = None


def how_to_run_postgres(url: str) -> str:
    """The skip message, naming the server and the database these tests use."""
    return HOW_TO_RUN_POSTGRES.format(url=url, database=make_url(url).database)


def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = database_reachable(POSTGRES_URL)
    if not _PG_OK:
        pytest.skip(how_to_run_postgres(POSTGRES_URL))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Each store test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'reminders.sqlite3'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """PostgreSQL only (a fresh schema), for tests of what only PostgreSQL does (row locks,
    LISTEN/NOTIFY); mark them `postgres`."""
    yield from postgres_schema_url()


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """An engine on a fresh PostgreSQL schema with no tables, for migration tests that upgrade
    it to the revision they start from; mark them `postgres`."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def bench_schemas_dropped(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The schemas benchmarks.common.postgres_schema makes in this test, checked to be gone
    afterwards. Only this test's own: other processes may hold bench schemas meanwhile."""
    from benchmarks import common

    made: list[str] = []

    def recorded_uuid4() -> uuid.UUID:
        value = uuid.uuid4()
        made.append(value.hex[:10])
        return value

    monkeypatch.setattr(common, "uuid", types.SimpleNamespace(uuid4=recorded_uuid4))
    yield made
    engine = create_engine(POSTGRES_URL)
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT nspname FROM pg_namespace")).scalars())
    engine.dispose()
    assert made, "the benchmark made no schema"
    assert not {name for name in names if name.endswith(tuple(f"_{tail}" for tail in made))}


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file database, for tests that need only the embedded default."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'reminders.sqlite3'}"


@pytest.fixture
def gc_threshold() -> Iterator[tuple[int, int, int]]:
    """The process's collector thresholds, put back after the test whatever it did."""
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    """Migrated, empty storage on each database."""
    opened = Storage.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The HTTP API, the test plan and a dispatcher at the moment patients are enrolled (see
    tests/api_fixtures.py), on a SQLite file.

    A module that also needs PostgreSQL says `pytestmark = pytest.mark.usefixtures(
    "database_url")`: its tests then run once on each database.
    """
    url = (
        request.getfixturevalue("database_url") if "database_url" in request.fixturenames else None
    )
    with running_world(tmp_path, url) as started:
        yield started
