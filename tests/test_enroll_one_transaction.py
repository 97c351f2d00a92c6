"""Each enrollment operation is one transaction, on SQLite and PostgreSQL: the patients, their
enrollments and messages, the opt-out of a patient given a number that texted STOP, and the
audit entries are committed together, or none of them, and trying again then does it all.

Failures are injected by the stores the service is given (an audit store and a consent store
that refuse their first write, as a full disk or a lost connection would) and, through the CSV
import, by a trigger refusing one patient's audit entry in the database itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import World, enrollment_body
from fastapi.testclient import TestClient
from plan_fixtures import write_demo_plan
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.api.app import create_app
from reminders.catalog import PlanCatalog
from reminders.consent import SmsConsentService, StopCause, StopVia
from reminders.csv_import import CsvImport
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import PatientChanges, read_input
from reminders.store.access import AccessRepository
from reminders.store.access_records import NewAuditEntry
from reminders.store.consent import ConsentRepository
from reminders.store.database import Database
from reminders.store.inbound import DuplicateInbound
from reminders.store.inbound_schema import InboundKind
from reminders.store.reply_records import NewInbound, SmsStateChange, SmsStop, SmsStopKind
from reminders.store.storage import Storage

# Every test on SQLite and on PostgreSQL, the HTTP API's too (see the `world` fixture).
pytestmark = pytest.mark.usefixtures("database_url")

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
PHONE = "+13125550123"
STOPPED = "+13125550188"  # texted STOP before anyone was enrolled with it
TABLES = ("patients", "enrollments", "messages", "opt_out_events", "audit_log")


def refused() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("the database went away"))


class AccessThatFails(AccessRepository):
    """The audit log's store, refusing its first `failures` writes."""

    def __init__(self, database: Database, failures: int = 1) -> None:
        super().__init__(database)
        self.failures = failures

    def append_audit(self, entries: Sequence[NewAuditEntry], now: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise refused()
        super().append_audit(entries, now)


class ConsentThatFails(ConsentRepository):
    """The consent store, refusing its first `failures` SMS stops."""

    def __init__(self, database: Database, failures: int = 1) -> None:
        super().__init__(database)
        self.failures = failures

    def stop_sms(self, patient_ids: Any, change: SmsStateChange, **kwargs: Any) -> SmsStop:
        if self.failures:
            self.failures -= 1
            raise refused()
        return super().stop_sms(patient_ids, change, **kwargs)


@pytest.fixture
def catalog(tmp_path: Path) -> PlanCatalog:
    return PlanCatalog(*write_demo_plan(tmp_path))


def service_over(
    storage: Storage,
    catalog: PlanCatalog,
    *,
    access: AccessRepository | None = None,
    consent: ConsentRepository | None = None,
) -> EnrollmentService:
    """The enrollment service over `storage`, with these stores in place of its own."""
    storage = dataclasses.replace(
        storage,
        access=access or storage.access,
        consent=consent or storage.consent,
    )
    audit = AuditTrail(storage.access, Actor.user("nina"), lambda: NOW)
    return EnrollmentService(storage, catalog, clock=lambda: NOW, audit=audit)


def ana(phone: str = PHONE) -> Any:
    return read_input(
        {
            "external_id": "MRN1",
            "first_name": "Ana",
            "phone": phone,
            "sms_consent": True,
            "timezone": "America/Chicago",
            "plan": "demo",
            "procedure_date": date(2027, 3, 10),
        }
    )


def counts(storage: Storage) -> dict[str, int]:
    """Rows in each table an enrollment writes, read on a connection of its own."""
    with storage.database.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }


def stored(storage: Storage) -> dict[str, Any]:
    """What is stored of the patient: phone, opt-out, procedure date, enrollment status, and
    each message's (step, channel, status, due instant)."""
    with storage.database.engine.connect() as connection:
        patient = connection.execute(
            text(
                "SELECT p.phone, p.sms_opted_out_at IS NOT NULL, "
                "CAST(e.procedure_date AS TEXT), e.status "
                "FROM patients p JOIN enrollments e ON e.patient_id = p.id"
            )
        ).one()
        messages = connection.execute(
            text("SELECT step_id, channel, status, due_at FROM messages ORDER BY step_id")
        ).all()
    return {"patient": tuple(patient), "messages": [tuple(m) for m in messages]}


def audit_actions(storage: Storage) -> list[str]:
    return [entry.action for entry in reversed(storage.access.audit_entries())]


def texted_stop(storage: Storage, phone: str) -> None:
    storage.inbound.record_inbound(
        NewInbound(
            "SMstop", phone, "+15550100", "STOP", NOW - timedelta(days=1), InboundKind.OPT_OUT
        )
    )


def pending_sms(storage: Storage) -> list[str]:
    with storage.database.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT step_id FROM messages WHERE channel = 'sms' AND status = 'pending' "
                    "ORDER BY step_id"
                )
            ).scalars()
        )


NOTHING = dict.fromkeys(TABLES, 0)


# -- enroll ---------------------------------------------------------------------------------


def test_an_audit_failure_leaves_no_patient_and_a_retry_enrolls_completely(
    storage: Storage, catalog: PlanCatalog
) -> None:
    service = service_over(storage, catalog, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        service.enroll_one(ana())

    assert counts(storage) == NOTHING
    assert service.enroll_one(ana()).created
    assert audit_actions(storage) == ["enroll"]
    assert len(stored(storage)["messages"]) == 4  # no blood thinners: no medicines step
    assert pending_sms(storage) == ["discharge", "prepare", "ride", "week-one"]


def test_a_failed_opt_out_of_a_number_that_texted_stop_leaves_no_patient(
    storage: Storage, catalog: PlanCatalog
) -> None:
    texted_stop(storage, STOPPED)
    service = service_over(storage, catalog, consent=ConsentThatFails(storage.database))

    with pytest.raises(OperationalError):
        service.enroll_one(ana(STOPPED))

    assert counts(storage) == NOTHING
    service.enroll_one(ana(STOPPED))
    assert stored(storage)["patient"][:2] == (STOPPED, True)
    assert pending_sms(storage) == []
    assert audit_actions(storage) == ["enroll"]


def test_an_audit_failure_after_the_opt_out_undoes_the_opt_out_too(
    storage: Storage, catalog: PlanCatalog
) -> None:
    texted_stop(storage, STOPPED)
    service = service_over(storage, catalog, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        service.enroll_one(ana(STOPPED))

    assert counts(storage) == NOTHING
    service.enroll_one(ana(STOPPED))
    assert counts(storage) == {
        "patients": 1,
        "enrollments": 1,
        "messages": 4,
        "opt_out_events": 1,
        "audit_log": 1,
    }
    assert pending_sms(storage) == []


def test_an_enrollment_looks_its_patients_up_once_and_commits_once(
    storage: Storage, catalog: PlanCatalog
) -> None:
    service = service_over(storage, catalog)
    service.enroll_one(ana())
    statements: list[str] = []
    commits: list[object] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(" ".join(sql.split()))

    def commit(connection: Any) -> None:
        commits.append(connection)

    engine = storage.database.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        service.reschedule("MRN1", date(2027, 3, 17))
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)

    lookups = [s for s in statements if s.startswith("SELECT") and "patients.external_id" in s]
    by_id = [s for s in lookups if "WHERE patients.external_id" in s]
    assert len(by_id) == 2, by_id  # the enrollment's id, then the patient's state (not again)
    assert len(commits) == 1


# -- changes to an enrolled patient ---------------------------------------------------------


def test_a_failed_reschedule_leaves_the_schedule_as_it_was(
    storage: Storage, catalog: PlanCatalog
) -> None:
    service_over(storage, catalog).enroll_one(ana())
    before, rows = stored(storage), counts(storage)
    failing = service_over(storage, catalog, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        failing.reschedule("MRN1", date(2027, 3, 17))

    assert (stored(storage), counts(storage)) == (before, rows)
    failing.reschedule("MRN1", date(2027, 3, 17))
    assert stored(storage)["patient"][2] == "2027-03-17"
    assert audit_actions(storage) == ["enroll", "reschedule"]


def test_a_failed_cancel_leaves_the_enrollment_active(
    storage: Storage, catalog: PlanCatalog
) -> None:
    service_over(storage, catalog).enroll_one(ana())
    before = stored(storage)
    failing = service_over(storage, catalog, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        failing.cancel("MRN1", "moved away")

    assert stored(storage) == before
    assert failing.cancel("MRN1", "moved away") == 4
    assert stored(storage)["patient"][3] == "cancelled"
    assert audit_actions(storage) == ["enroll", "cancel"]


def test_a_failed_change_to_a_number_that_texted_stop_leaves_no_sms_for_a_reschedule(
    storage: Storage, catalog: PlanCatalog
) -> None:
    # The opt-out x reschedule case: had the new number been stored without the patient's
    # opt-out, the next reschedule would plan texts to a number that said STOP.
    service_over(storage, catalog).enroll_one(ana())
    texted_stop(storage, STOPPED)
    before = stored(storage)
    failing = service_over(storage, catalog, consent=ConsentThatFails(storage.database))

    with pytest.raises(OperationalError):
        failing.update_patient("MRN1", PatientChanges(phone=STOPPED), dry_run=False)

    assert stored(storage) == before
    failing.update_patient("MRN1", PatientChanges(phone=STOPPED), dry_run=False)
    failing.reschedule("MRN1", date(2027, 3, 17))
    assert stored(storage)["patient"][:3] == (STOPPED, True, "2027-03-17")
    assert pending_sms(storage) == []
    assert audit_actions(storage) == ["enroll", "update (phone)", "reschedule"]


def test_a_no_show_is_audited_and_a_failed_one_cancels_nothing(
    storage: Storage, catalog: PlanCatalog
) -> None:
    service_over(storage, catalog).enroll_one(ana())
    before = stored(storage)
    failing = service_over(storage, catalog, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        failing.cancel_after_procedure("MRN1", "no-show: did not attend")

    assert stored(storage) == before
    _, count = failing.cancel_after_procedure("MRN1", "no-show: did not attend")
    assert count == 2
    assert pending_sms(storage) == ["prepare", "ride"]
    assert audit_actions(storage) == ["enroll", "cancel.after_procedure"]


def test_a_failed_plan_rollout_batch_leaves_its_enrollments_on_their_version(
    storage: Storage, tmp_path: Path
) -> None:
    first = service_over(storage, PlanCatalog(*write_demo_plan(tmp_path)))
    first.enroll(
        [first.validate(ana()), first.validate(ana().model_copy(update={"external_id": "MRN2"}))]
    )
    newer = PlanCatalog(*write_demo_plan(tmp_path, version=2))
    failing = service_over(storage, newer, access=AccessThatFails(storage.database))

    with pytest.raises(OperationalError):
        failing.apply_plan("demo", dry_run=False)

    assert versions(storage) == {1}
    assert len(failing.apply_plan("demo", dry_run=False).outcomes) == 2
    assert versions(storage) == {2}
    assert audit_actions(storage) == ["enroll", "enroll", "plan.apply", "plan.apply"]


def versions(storage: Storage) -> set[int]:
    """The plan versions enrollments and their messages are on."""
    with storage.database.engine.connect() as connection:
        return set(
            connection.execute(
                text("SELECT plan_version FROM enrollments UNION SELECT plan_version FROM messages")
            ).scalars()
        )


# -- stopping and resuming SMS ----------------------------------------------------------------


def consent_service(storage: Storage, catalog: PlanCatalog, failures: int = 0) -> SmsConsentService:
    """Stopping and resuming SMS, over an audit store refusing its first `failures` writes."""
    access = AccessThatFails(storage.database, failures)
    audit = AuditTrail(access, Actor.user("nina"), lambda: NOW)
    over = dataclasses.replace(storage, access=access)
    return SmsConsentService(over, catalog, audit, clock=lambda: NOW)


def stop_by_text(service: SmsConsentService, patient_id: int, message_id: str) -> None:
    inbound = NewInbound(message_id, PHONE, "+15550100", "STOP", NOW, InboundKind.OPT_OUT)
    cause = StopCause(SmsStopKind.OPTED_OUT, StopVia.TEXT, "STOP")
    service.stop(cause, patient_ids=[patient_id], inbound=inbound)


def test_a_failed_stop_records_neither_the_text_nor_the_opt_out(
    storage: Storage, catalog: PlanCatalog
) -> None:
    patient_id = service_over(storage, catalog).enroll_one(ana()).patient_id
    before = (stored(storage), counts(storage))

    with pytest.raises(OperationalError):
        stop_by_text(consent_service(storage, catalog, failures=1), patient_id, "SM1")

    assert (stored(storage), counts(storage)) == before
    assert not storage.inbound.inbound_seen("SM1")
    stop_by_text(consent_service(storage, catalog), patient_id, "SM1")
    assert stored(storage)["patient"][1]
    assert pending_sms(storage) == []
    assert audit_actions(storage) == ["enroll", "sms.opt_out"]


def test_a_failed_opt_in_stays_opted_out_so_that_trying_again_restores_the_texts(
    storage: Storage, catalog: PlanCatalog
) -> None:
    # Had the opt-in been committed before the re-plan failed, trying again would find the
    # patient opted in already and restore nothing: the texts would stay skipped for good.
    patient_id = service_over(storage, catalog).enroll_one(ana()).patient_id
    stop_by_text(consent_service(storage, catalog), patient_id, "SM1")
    before = stored(storage)

    with pytest.raises(OperationalError):
        consent_service(storage, catalog, failures=1).resume([patient_id], source="staff")

    assert stored(storage) == before
    resumed = consent_service(storage, catalog).resume([patient_id], source="staff")
    assert (resumed.opted_in, resumed.restored) == ([patient_id], 4)
    assert pending_sms(storage) == ["discharge", "prepare", "ride", "week-one"]
    assert audit_actions(storage)[-1] == "sms.opt_in"


def test_a_text_handled_meanwhile_is_a_duplicate_and_stops_nothing(
    storage: Storage, catalog: PlanCatalog
) -> None:
    # The same STOP recorded by another request between the webhook's look-up and its stop:
    # the repeat's insert fails inside the stop's transaction, which still names it.
    patient_id = service_over(storage, catalog).enroll_one(ana()).patient_id
    storage.inbound.record_inbound(
        NewInbound("SM1", PHONE, "+15550100", "STOP", NOW, InboundKind.HELP)
    )
    before = (stored(storage), counts(storage))

    with pytest.raises(DuplicateInbound):
        stop_by_text(consent_service(storage, catalog), patient_id, "SM1")

    assert (stored(storage), counts(storage)) == before


# -- through the CSV import, two batches in flight on PostgreSQL ------------------------------


def refuse_audit_of(storage: Storage, external_id: str) -> None:
    """A trigger refusing the audit entry of one patient, on SQLite or PostgreSQL."""
    engine = storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                    f"WHEN NEW.external_id = '{external_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.external_id = '{external_id}' THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        )


def test_a_csv_row_whose_audit_entry_is_refused_is_not_stored_and_the_others_are(
    storage: Storage, catalog: PlanCatalog
) -> None:
    # Batches of 100 rows: copied on PostgreSQL (patients, messages and audit entries), two
    # batches in flight there, each in its own thread's transaction.
    refuse_audit_of(storage, "c150")
    lines = ["external_id,first_name,phone,sms_consent,timezone,plan,procedure_date"]
    lines += [f"c{n},Pat,+1312200{n:04d},yes,America/Chicago,demo,2027-03-10" for n in range(300)]
    service = service_over(storage, catalog)

    report = CsvImport(service, batch_size=100).run("\n".join(lines).encode())

    assert report.counts() == {"created": 299, "updated": 0, "unchanged": 0, "rejected": 1}
    ((line, field, message),) = [(p.line, p.field, p.message) for p in report.problems]
    assert (line, field) == (152, "row")
    assert message.endswith("nothing of it was stored")
    kept = sorted(f"c{n}" for n in range(300) if n != 150)
    with storage.database.engine.connect() as connection:
        patients = connection.execute(text("SELECT external_id FROM patients")).scalars()
        assert sorted(patients) == kept
        assert connection.execute(text("SELECT count(*) FROM messages")).scalar_one() == 299 * 4
    entries = storage.access.audit_entries(limit=1000)
    assert sorted(e.external_id or "" for e in entries) == kept


# -- through the HTTP API -------------------------------------------------------------------


def test_the_api_answers_500_and_stores_nothing_when_the_audit_entry_is_refused(
    world: World,
) -> None:
    storage = world.app.storage
    refuse_audit_of(storage, "ana")
    before = counts(storage)
    client = TestClient(create_app(world.app), raise_server_exceptions=False)

    refused_response = client.post(
        "/v1/enrollments", json=enrollment_body("ana", "+13125550123"), headers=world.headers
    )

    assert refused_response.status_code == 500
    assert counts(storage) == before
    with storage.database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_audit" + trigger_table(storage)))
    assert world.enroll("ana", "+13125550123").status_code == 201
    assert [e.action for e in storage.access.audit_entries(external_id="ana")] == ["enroll"]


def trigger_table(storage: Storage) -> str:
    return " ON audit_log" if storage.database.engine.dialect.name == "postgresql" else ""
