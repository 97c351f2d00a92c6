"""Staff lists page by keyset and read in index order; the claim reads a wave without sorting."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import write_demo_plan
from sqlalchemy import Engine, event

from reminders.catalog import PlanCatalog
from reminders.schedule_diff import MessageStatus
from reminders.store import patient_lists as patients_store
from reminders.store.message_records import MessageCursor
from reminders.store.records import PatientSearch
from reminders.store.storage import Storage

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path) -> PlanCatalog:
    plans, templates = write_demo_plan(tmp_path)
    return PlanCatalog(plans, templates)


def enroll(storage: Storage, catalog: PlanCatalog, count: int, at: datetime = NOW) -> None:
    requests = due_now_requests(catalog, at, count, steps=("discharge", "week-one"))
    storage.patients.enroll_many(requests, at)


def test_patient_pages_cover_every_patient_once_in_order(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 7)

    pages, after = [], None
    while page := storage.patient_lists.list_patients(limit=3, after=after):
        pages.append([s.external_id for s in page])
        after = page[-1].external_id

    assert pages == [
        ["P-00000", "P-00001", "P-00002"],
        ["P-00003", "P-00004", "P-00005"],
        ["P-00006"],
    ]


def test_a_patient_page_counts_only_its_own_messages(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 3)

    (summary,) = storage.patient_lists.list_patients(limit=1, after="P-00000")

    assert (summary.external_id, summary.pending, summary.sent) == ("P-00001", 2, 0)


def test_message_pages_cover_every_message_once_even_with_equal_times(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 4)  # 8 messages, all changed at the same instant
    enroll(storage, catalog, 1, at=NOW + timedelta(minutes=5))  # P-00000's rows move: newest

    seen: list[int] = []
    cursor = None
    while page := storage.message_views.list_messages(limit=3, before=cursor):
        seen += [m.id for m in page]
        cursor = page[-1].cursor

    assert seen == [2, 1, 8, 7, 6, 5, 4, 3]


def test_a_cursor_reads_back_what_it_wrote() -> None:
    cursor = MessageCursor(datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC), 42)

    assert MessageCursor.parse(str(cursor)) == cursor


@pytest.mark.parametrize("text", ["", "42", "yesterday~4", "2026-03-02T15:00:00~x"])
def test_a_bad_cursor_is_refused_with_the_expected_shape(text: str) -> None:
    with pytest.raises(ValueError, match="expected '<UTC time>~<id>'"):
        MessageCursor.parse(text)


# -- query plans ------------------------------------------------------------------------------


@contextmanager
def statements_of(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) that the engine runs meanwhile."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plan_lines(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """How the database would run a statement, one line per step of the plan.

    PostgreSQL is told to avoid sorts and full scans wherever an index can do the job, so a
    Sort or a Seq Scan in the plan means no index gives that order or that filter.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_sort = off")
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            return list(_pg_nodes(json.loads(json.dumps(cursor.fetchone()[0]))[0]["Plan"]))
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return [str(row[-1]) for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()


def search_plan(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """How the database would run a search, with the index each step reads.

    Unlike `plan_lines`, PostgreSQL may sort here: a search's few matches are read from the
    lowered-column indexes and then put in order, instead of walking every patient in order.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            return list(_pg_indexes(json.loads(json.dumps(cursor.fetchone()[0]))[0]["Plan"]))
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return [str(row[-1]) for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()


def _pg_indexes(node: dict[str, Any]) -> Iterator[str]:
    yield f"{node['Node Type']} {node.get('Relation Name', '')} {node.get('Index Name', '')}"
    for child in node.get("Plans", []):
        yield from _pg_indexes(child)


def _pg_nodes(node: dict[str, Any]) -> Iterator[str]:
    yield f"{node['Node Type']} {node.get('Relation Name', '')}".strip()
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)


def sorted_or_scanned(lines: list[str]) -> list[str]:
    """Plan steps that sort rows or read the whole messages table."""
    return [
        line
        for line in lines
        if line == "Sort"
        or line == "Incremental Sort"
        or line == "Seq Scan messages"
        or "TEMP B-TREE" in line
        or line == "SCAN messages"
    ]


VIEWS: dict[str, Callable[[Storage], object]] = {
    "claim": lambda s: s.outbox.claim_due(NOW + timedelta(days=30), "w1", 200),
    "next due": lambda s: s.outbox.next_due_at(),
    "patients": lambda s: s.patient_lists.list_patients(limit=50),
    "patients after": lambda s: s.patient_lists.list_patients(limit=50, after="P-00002"),
    "messages": lambda s: s.message_views.list_messages(limit=50),
    "messages by status": lambda s: s.message_views.list_messages(
        status=MessageStatus.FAILED, limit=50
    ),
    "messages since": lambda s: s.message_views.list_messages(since=NOW, limit=50),
    "messages page 2": lambda s: s.message_views.list_messages(
        limit=50, before=MessageCursor(NOW + timedelta(hours=1), 10**9)
    ),
    "waiting": lambda s: s.message_views.upcoming(waiting=True, limit=50),
    "replies": lambda s: s.inbound.list_inbound(limit=50),
    "outcomes": lambda s: s.outcomes.list_outcomes(limit=50),
    "flags": lambda s: s.outcomes.list_flags(open_only=False, limit=50),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_each_list_and_the_claim_read_in_index_order(
    storage: Storage, catalog: PlanCatalog, view: str
) -> None:
    enroll(storage, catalog, 5)
    engine = storage.database.engine

    with statements_of(engine) as statements:
        VIEWS[view](storage)

    assert statements
    for statement, parameters in statements:
        assert sorted_or_scanned(plan_lines(engine, statement, parameters)) == [], statement


@pytest.mark.parametrize("text", ["mar", "P-0001", "MAR"])
def test_an_id_or_name_search_reads_the_lowered_column_indexes(
    storage: Storage, catalog: PlanCatalog, text: str
) -> None:
    """The console's search reads the 0010 indexes, not every patient (704 ms at 2,000 on
    SQLite when it scanned)."""
    enroll(storage, catalog, 5)
    engine = storage.database.engine
    search = PatientSearch(text=text)

    with statements_of(engine) as statements:
        storage.patient_lists.list_patients(limit=50, search=search)

    ((statement, parameters),) = [s for s in statements if "ORDER BY" in s[0]]
    lines = search_plan(engine, statement, parameters)
    used = " ".join(lines)
    assert "ix_patients_lower_external_id" in used, lines
    assert "ix_patients_lower_first_name" in used, lines
    assert not [line for line in lines if line == "SCAN patients" or "Seq Scan" in line], lines


def test_a_prefix_most_patients_share_walks_patients_in_order(
    storage: Storage, catalog: PlanCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COMMON_PREFIX matches (5,000; 3 here), sorting them all would cost more than
    walking the external-id index until a page is full."""
    monkeypatch.setattr(patients_store, "COMMON_PREFIX", 3)
    enroll(storage, catalog, 5)
    engine = storage.database.engine

    with statements_of(engine) as statements:
        found = storage.patient_lists.list_patients(limit=2, search=PatientSearch("mar"))

    assert [s.external_id for s in found] == ["P-00000", "P-00001"]
    ((statement, parameters),) = [s for s in statements if "ORDER BY" in s[0]]
    assert sorted_or_scanned(plan_lines(engine, statement, parameters)) == []
    assert "lower_first_name" not in " ".join(search_plan(engine, statement, parameters))


def test_a_search_finds_prefixes_in_any_case_and_takes_wildcards_literally(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 12)

    def found(text: str) -> list[str]:
        return [
            s.external_id for s in storage.patient_lists.list_patients(search=PatientSearch(text))
        ]

    assert found("p-0001") == ["P-00010", "P-00011"]
    assert found("P-0000") == [f"P-0000{n}" for n in range(10)]
    assert found("P-0001%") == []
    assert found("p_0001") == []
    assert len(found("MAR")) == 12  # every patient here is Maria
    assert found("ari") == []


def test_the_waiting_list_reads_only_held_back_messages(
    storage: Storage, catalog: PlanCatalog
) -> None:
    """Today's waiting list reads the partial index of 0011, not every pending message (1.2 s
    with 1.3 million pending on SQLite when it walked the claim index)."""
    enroll(storage, catalog, 5)
    engine = storage.database.engine

    with statements_of(engine) as statements:
        storage.message_views.upcoming(waiting=True, limit=50)

    ((statement, parameters),) = statements
    lines = search_plan(engine, statement, parameters)
    assert "ix_messages_waiting" in " ".join(lines), lines
    assert sorted_or_scanned(plan_lines(engine, statement, parameters)) == []
