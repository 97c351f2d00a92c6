"""Two dispatchers applying kept delivery reports at once: each report applies exactly once,
and a report whose send is still not recorded is left as it is (not deleted and kept again).

Each dispatcher is an App of its own (its own connection pool) over the same database, as two
`reminders serve` processes, or `serve` and a `send-due` from cron, would be.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import WELCOME_AT, World, running_world, utc
from sqlalchemy import select, text

from reminders.app import App
from reminders.dispatch.dispatcher import Dispatcher
from reminders.store.inbound_schema import EarlyReport

PATIENTS = 40
UNMATCHED = ("SMnot-yet-1", "SMnot-yet-2", "SMnot-yet-3")


def sent_welcomes(world: World, count: int = PATIENTS) -> list[str]:
    """`count` patients enrolled and their welcome texts sent and recorded; their SIDs."""
    for i in range(count):
        phone = f"+1202555{i:04d}"
        assert world.enroll(f"p{i}", phone).status_code == 201
    world.at(WELCOME_AT)
    dispatcher = Dispatcher(
        world.app.storage,
        world.app.catalog,
        {"sms": world.sms, "email": world.email},
        world.app.dispatch_settings(),
    )
    assert dispatcher.run_once().outcomes == {"sent": count}
    return list(world.sms.sids)


@contextmanager
def another_dispatcher(world: World) -> Iterator[App]:
    """A second process's App over the same database."""
    other = App.from_settings(world.app.settings)
    try:
        yield other
    finally:
        other.close()


def at_once(*apps: App) -> list[int]:
    """Each app's `apply_early_reports`, started together in its own thread; what each applied."""
    start = threading.Barrier(len(apps))
    applied = [0] * len(apps)

    def apply(index: int) -> None:
        replies = apps[index].replies()
        start.wait()
        applied[index] = replies.apply_early_reports()

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return applied


def kept_ids(world: World) -> list[int]:
    return [report.id for report in world.app.storage.early_reports.kept()]


def row_versions(world: World) -> dict[int, str]:
    """Each kept row's id and the transaction that last wrote it (PostgreSQL's xmin)."""
    with world.app.storage.database.session() as session:
        rows = session.execute(text("SELECT id, xmin::text FROM early_reports")).all()
    return {row[0]: row[1] for row in rows}


@pytest.mark.usefixtures("database_url")
def test_two_dispatchers_apply_each_kept_report_exactly_once(world: World) -> None:
    sids = sent_welcomes(world)
    kept = world.app.storage.early_reports
    with another_dispatcher(world) as other:
        for sid in UNMATCHED:
            kept.keep(sid, "delivered", None, utc(WELCOME_AT))
        waiting = kept_ids(world)
        # Three rounds of reports, each a step further in Twilio's message life.
        for status in ("sending", "sent", "delivered"):
            for sid in sids:
                kept.keep(sid, status, None, utc(WELCOME_AT))

            applied = at_once(world.app, other)

            assert sum(applied) == PATIENTS, applied  # none twice, none missed
            assert kept_ids(world) == waiting  # the unmatched ones still wait, same rows
            first, last = (world.message(f"p{i}", "welcome") for i in (0, PATIENTS - 1))
            assert first["provider_status"] == last["provider_status"] == status


@pytest.mark.postgres
def test_a_report_whose_send_is_not_recorded_is_left_untouched(
    postgres_url: str, tmp_path: Path
) -> None:
    """No delete and insert again on every pass: the row is never written (same xmin)."""
    with running_world(tmp_path, postgres_url) as world:
        (sid,) = sent_welcomes(world, 1)
        kept = world.app.storage.early_reports
        for unmatched in UNMATCHED:
            kept.keep(unmatched, "delivered", None, utc(WELCOME_AT))
        kept.keep(sid, "delivered", None, utc(WELCOME_AT))
        before = row_versions(world)
        replies = world.app.replies()

        assert replies.apply_early_reports() == 1
        world.at((utc(WELCOME_AT) + timedelta(hours=12)).isoformat())
        assert replies.apply_early_reports() == 0

        matched_id = max(before)
        assert row_versions(world) == {i: v for i, v in before.items() if i != matched_id}


@pytest.mark.postgres
def test_reports_another_dispatcher_is_taking_are_skipped_not_waited_for(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_world(tmp_path, postgres_url) as world:
        first, second = sent_welcomes(world, 2)
        kept = world.app.storage.early_reports
        kept.keep(first, "delivered", None, utc(WELCOME_AT))
        kept.keep(second, "delivered", None, utc(WELCOME_AT))
        locked_id = kept_ids(world)[0]
        replies = world.app.replies()
        with another_dispatcher(world) as other, other.storage.database.engine.connect() as held:
            # The other dispatcher is in the middle of taking the first report.
            held.execute(
                select(EarlyReport.id).where(EarlyReport.id == locked_id).with_for_update()
            )
            applied: list[int] = []
            taking = threading.Thread(target=lambda: applied.append(replies.apply_early_reports()))
            taking.start()
            taking.join(timeout=10)  # a guard only: waiting for the lock would hang here

            assert not taking.is_alive() and applied == [1]
            assert kept_ids(world) == [locked_id]
            held.rollback()  # the other dispatcher gave up: the report waits for the next pass

        assert replies.apply_early_reports() == 1
        assert kept_ids(world) == []
        assert world.message("p0", "welcome")["provider_status"] == "delivered"
