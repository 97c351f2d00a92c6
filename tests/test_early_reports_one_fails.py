"""A kept delivery report that fails to apply does not hold back the others: each report
applies on its own, so a carrier opt-out (21610) kept behind a failing report still stops
texting its number at the next pass. The failing one stays kept, with nothing of it applied
half-way, and is tried again each pass until it is a day old (each pass then raises
KeptReportsError naming it, once the others are committed); then it is dropped, and only
what is really removed is logged as dropped.

Failures come from the database itself (a trigger refusing one message's report, which on
PostgreSQL voids the transaction it runs in) and from a consent store that refuses to stop
one number's SMS after the report is recorded and its flag raised. On a SQLite file and on
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

import pytest
from api_fixtures import ANA, BEN, WELCOME_AT, World, utc
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from reminders.errors import KeptReportsError
from reminders.replies.service import KEEP_EARLY_REPORTS_FOR, ReplyService
from reminders.store.consent import ConsentRepository
from reminders.store.reply_records import SmsStateChange, SmsStop

pytestmark = pytest.mark.usefixtures("database_url")


class ConsentRefusingAna(ConsentRepository):
    """The consent store, refusing every SMS stop of Ana's number."""

    def stop_sms(
        self, patient_ids: Collection[int], change: SmsStateChange, **kwargs: Any
    ) -> SmsStop:
        if ANA in kwargs.get("numbers", ()):
            raise OperationalError("UPDATE patients ...", {}, Exception("the disk is full"))
        return super().stop_sms(patient_ids, change, **kwargs)


def refuse_reports_on(world: World, sid: str) -> None:
    """A trigger refusing any change to the message sent as `sid`."""
    engine = world.app.storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_report BEFORE UPDATE ON messages "
                    f"WHEN NEW.provider_message_id = '{sid}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_report() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.provider_message_id = '{sid}' THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_report BEFORE UPDATE ON messages "
                "FOR EACH ROW EXECUTE FUNCTION refuse_report()"
            )
        )


def drop_trigger(world: World, name: str, table: str) -> None:
    engine = world.app.storage.database.engine
    on = f" ON {table}" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as connection:
        connection.execute(text(f"DROP TRIGGER {name}{on}"))


def by_trigger(world: World, ana_sid: str) -> ReplyService:
    """The app's service, over a database that refuses to record Ana's report."""
    refuse_reports_on(world, ana_sid)
    return world.app.replies()


def by_consent_store(world: World, _ana_sid: str) -> ReplyService:
    """A service whose consent store fails once Ana's report is recorded and flagged."""
    storage = world.app.storage
    storage = dataclasses.replace(storage, consent=ConsentRefusingAna(storage.database))
    return ReplyService(storage, world.app.catalog, world.app.clinic)


FAILURES: dict[str, Callable[[World, str], ReplyService]] = {
    "the database refuses its record": by_trigger,
    "stopping its SMS fails": by_consent_store,
}


def both_opted_out_at_the_carrier(world: World) -> tuple[str, str, list[int]]:
    """Ana and Ben got their welcome text; each then texted STOP to the carrier, whose reports
    (21610) came before the sends were recorded and were kept, Ana's first. Their SIDs and the
    kept reports' ids."""
    assert world.enroll("ana", ANA).status_code == 201
    assert world.enroll("ben", BEN).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    ana_sid = world.message("ana", "welcome")["provider_message_id"]
    ben_sid = world.message("ben", "welcome")["provider_message_id"]
    kept = world.app.storage.early_reports
    kept.keep(ana_sid, "undelivered", "21610", utc(WELCOME_AT))
    kept.keep(ben_sid, "undelivered", "21610", utc(WELCOME_AT))
    return ana_sid, ben_sid, [report.id for report in kept.kept()]


def opted_out(world: World, external_id: str) -> bool:
    patient = next(p for p in world.get("/v1/patients") if p["external_id"] == external_id)
    return patient["sms_opted_out_at"] is not None


def undelivered_flags(world: World, external_id: str) -> int:
    flags = world.get("/v1/flags", kind="undelivered")
    return sum(f["external_id"] == external_id for f in flags)


def kept_ids(world: World) -> list[int]:
    return [report.id for report in world.app.storage.early_reports.kept()]


def failure_logs(caplog: pytest.LogCaptureFixture, report_id: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "reminders.replies.service" and f"id {report_id}" in r.getMessage()
    ]


@pytest.mark.parametrize("failing", FAILURES.values(), ids=FAILURES.keys())
def test_an_opt_out_kept_behind_a_report_that_fails_still_stops_sms(
    world: World, caplog: pytest.LogCaptureFixture, failing: Callable[[World, str], ReplyService]
) -> None:
    ana_sid, _, (ana_report, _) = both_opted_out_at_the_carrier(world)
    replies = failing(world, ana_sid)
    caplog.set_level(logging.INFO)

    with pytest.raises(KeptReportsError) as failed:  # once the others are committed
        replies.apply_early_reports()

    assert (failed.value.applied, failed.value.report_ids) == (1, [ana_report])
    assert opted_out(world, "ben") and undelivered_flags(world, "ben") == 1
    # Nothing of Ana's report is kept half-way (no status, no flag), and it stays for later.
    ana = world.message("ana", "welcome")
    assert (ana["provider_status"], ana["error_code"]) != ("undelivered", "21610")
    assert not opted_out(world, "ana") and undelivered_flags(world, "ana") == 0
    assert kept_ids(world) == [ana_report]
    assert failure_logs(caplog, ana_report) == []  # said by the error, which the caller logs
    assert ANA not in str(failed.value) and BEN not in str(failed.value)
    assert ANA not in caplog.text and BEN not in caplog.text

    world.at((utc(WELCOME_AT) + timedelta(hours=1)).isoformat())
    with pytest.raises(KeptReportsError) as failed:  # tried again, and still kept
        replies.apply_early_reports()
    assert (failed.value.applied, failed.value.report_ids) == (0, [ana_report])
    assert kept_ids(world) == [ana_report]
    assert undelivered_flags(world, "ben") == 1


def test_a_report_applies_once_its_failure_is_fixed(world: World) -> None:
    ana_sid, _, _ = both_opted_out_at_the_carrier(world)
    replies = by_trigger(world, ana_sid)
    with pytest.raises(KeptReportsError):
        replies.apply_early_reports()
    assert opted_out(world, "ben")

    drop_trigger(world, "refuse_report", "messages")
    assert replies.apply_early_reports() == 1

    assert opted_out(world, "ana") and undelivered_flags(world, "ana") == 1
    assert kept_ids(world) == []


def test_a_report_that_still_fails_after_a_day_is_dropped_and_said_so(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    ana_sid, _, (ana_report, _) = both_opted_out_at_the_carrier(world)
    replies = by_trigger(world, ana_sid)
    caplog.set_level(logging.INFO)
    world.at((utc(WELCOME_AT) + KEEP_EARLY_REPORTS_FOR - timedelta(minutes=1)).isoformat())
    with pytest.raises(KeptReportsError) as failed:
        replies.apply_early_reports()
    assert failed.value.applied == 1
    assert kept_ids(world) == [ana_report]
    assert "dropped" not in caplog.text

    world.at((utc(WELCOME_AT) + KEEP_EARLY_REPORTS_FOR + timedelta(minutes=1)).isoformat())
    assert replies.apply_early_reports() == 0

    assert kept_ids(world) == []
    (said,) = failure_logs(caplog, ana_report)[-1:]
    assert said.startswith("dropped a delivery report")
    assert not opted_out(world, "ana")


def test_nothing_is_logged_as_dropped_when_the_pass_removes_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A report too old to keep is dropped only when its removal commits."""
    kept = world.app.storage.early_reports
    kept.keep("SMnever", "delivered", None, utc(WELCOME_AT))
    engine = world.app.storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_removal BEFORE DELETE ON early_reports "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_removal() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused by a test trigger'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_removal BEFORE DELETE ON early_reports "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_removal()"
                )
            )
    caplog.set_level(logging.INFO)
    world.at((utc(WELCOME_AT) + KEEP_EARLY_REPORTS_FOR + timedelta(minutes=1)).isoformat())

    with pytest.raises(Exception, match="refused by a test trigger"):
        world.app.replies().apply_early_reports()

    assert [r.provider_message_id for r in kept.kept()] == ["SMnever"]
    assert "dropped" not in caplog.text
