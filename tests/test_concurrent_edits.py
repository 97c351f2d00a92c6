"""Two staff edits of one patient at once end as if one had come after the other.

On PostgreSQL (READ COMMITTED) a reschedule or a details edit read the enrollment, then wrote
it back with its change, locking nothing in between: an edit that committed meanwhile was
undone (the procedure moved back to its first date, a new email reverted), and an edit of an
enrollment cancelled meanwhile made it active again. An HL7 S13 moving the appointment while
staff edited the patient lost one of the two the same way. Every edit now locks the patient's row
when it looks the enrollment up (`PatientRepository.enrollment_id`), before reading it.

The race is made, not hoped for: a store substituted into the first edit holds its
transaction open once it has read what it edits, just before it writes; the second then runs
on another thread until it is done or waits for the first; only then does the first commit.
SQLite (one writer) runs the same steps. Enrolling a known patient again (a CSV row, the
API's PUT) replaces their details as a whole and already waited at the patient's update,
before reading the messages; it is raced here too.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import hl7
import pytest
from feed_fixtures import Feed, open_feed, siu
from plan_fixtures import CLINIC, write_demo_plan
from race_fixtures import WAIT, race, waiting_for
from sqlalchemy import text

from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import EnrollmentInput, PatientChanges, read_input
from reminders.replies.service import InboundSms, ReplyService
from reminders.store.database import Database
from reminders.store.inbound import InboundRepository
from reminders.store.patients import PatientRepository
from reminders.store.records import EnrollmentOutcome, EnrollmentRequest
from reminders.store.storage import Storage

pytestmark = pytest.mark.usefixtures("database_url")

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
BOOKED, MOVED = date(2027, 3, 10), date(2027, 3, 20)
OLD_EMAIL, NEW_EMAIL = "ana@example.org", "ana.new@example.org"


class PatientsThatPause(PatientRepository):
    """The first edit's store: once it has read all it reads of the enrollment, just before
    it writes, it says so and keeps its transaction open until the test lets it go."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.reached = threading.Event()
        self.go = threading.Event()
        self.backend_pid: int | None = None
        self.armed = True

    def enroll_many(
        self, requests: Sequence[EnrollmentRequest], now: datetime, **kwargs: Any
    ) -> list[EnrollmentOutcome]:
        self._pause()
        return super().enroll_many(requests, now, **kwargs)

    def cancel_enrollment(self, enrollment_id: int, reason: str, now: datetime) -> int:
        self._pause()
        return super().cancel_enrollment(enrollment_id, reason, now)

    def _pause(self) -> None:
        if not self.armed or self.reached.is_set():
            return
        if self.database.concurrent_writers:
            with self.database.session() as session:
                self.backend_pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        self.reached.set()
        assert self.go.wait(WAIT), "the test never let the first edit commit"


def ana(procedure_date: date) -> EnrollmentInput:
    return read_input(
        {
            "external_id": "MRN1",
            "first_name": "Ana",
            "email": OLD_EMAIL,
            "timezone": "America/Chicago",
            "plan": "demo",
            "procedure_date": procedure_date,
        }
    )


def enrolled(storage: Storage, catalog: PlanCatalog) -> EnrollmentService:
    service = EnrollmentService(storage, catalog, clock=lambda: NOW)
    service.enroll_one(ana(BOOKED))
    return service


def end_state(storage: Storage, service: EnrollmentService) -> tuple[str, date, str]:
    """(status, procedure date, email), after checking the messages follow that date."""
    with storage.database.engine.connect() as connection:
        status, procedure_date, email = connection.execute(
            text(
                "SELECT e.status, e.procedure_date, p.email FROM enrollments e "
                "JOIN patients p ON p.id = e.patient_id WHERE p.external_id = 'MRN1'"
            )
        ).one()
        twice = connection.execute(
            text(
                "SELECT step_id FROM messages WHERE status = 'pending' "
                "GROUP BY enrollment_id, step_id HAVING count(*) > 1"
            )
        ).all()
    assert twice == [], "a step is pending twice"
    if status == "active":
        # Planning the stored details again changes nothing: no message of another date.
        replan = service.update_patient("MRN1", PatientChanges(), dry_run=True)
        assert [c for c in replan.changes if c.changed] == []
    else:
        assert service.preview_cancel("MRN1") == [], "a cancelled enrollment has messages pending"
    if isinstance(procedure_date, str):  # SQLite through a plain connection
        procedure_date = date.fromisoformat(procedure_date)
    return status, procedure_date, email


EDITS: dict[str, Callable[[EnrollmentService], object]] = {
    "reschedule": lambda service: service.reschedule("MRN1", MOVED),
    "email": lambda service: service.update_patient(
        "MRN1", PatientChanges(email=NEW_EMAIL), dry_run=False
    ),
    "cancel": lambda service: service.cancel("MRN1", "patient moved away"),
    # Enrolling a known patient again (a CSV row, the API's PUT) with a new date.
    "enroll": lambda service: service.enroll_one(ana(MOVED)),
}
# The end of either order (one edit, then the other); an edit of a cancelled enrollment is
# refused, so both orders of an email change and a cancel end cancelled with the old email.
SERIAL_ENDS = {
    ("email", "reschedule"): {("active", MOVED, NEW_EMAIL)},
    ("email", "cancel"): {("cancelled", BOOKED, NEW_EMAIL), ("cancelled", BOOKED, OLD_EMAIL)},
    ("reschedule", "cancel"): {("cancelled", MOVED, OLD_EMAIL), ("active", MOVED, OLD_EMAIL)},
    ("enroll", "email"): {("active", MOVED, NEW_EMAIL), ("active", MOVED, OLD_EMAIL)},
    ("enroll", "cancel"): {("cancelled", MOVED, OLD_EMAIL), ("active", MOVED, OLD_EMAIL)},
}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("reschedule", "email"),
        ("email", "reschedule"),
        ("email", "cancel"),
        ("cancel", "email"),
        ("reschedule", "cancel"),
        ("cancel", "reschedule"),
        ("enroll", "email"),
        ("email", "enroll"),
        ("enroll", "cancel"),
        ("cancel", "enroll"),
    ],
)
def test_two_edits_of_one_patient_end_as_one_after_the_other(
    storage: Storage, tmp_path: Path, first: str, second: str
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    service = enrolled(storage, catalog)
    database = storage.database
    pausing = PatientsThatPause(database)
    first_service = EnrollmentService(
        dataclasses.replace(storage, patients=pausing), catalog, clock=lambda: NOW
    )
    errors = race(
        lambda: EDITS[first](first_service),
        lambda: EDITS[second](service),
        reached=pausing.reached,
        go=pausing.go,
        second_waits=(lambda: waiting_for(database, pausing.backend_pid))
        if database.concurrent_writers
        else None,
    )

    refused = [e for e in errors if "is cancelled" in str(e)]
    assert [e for e in errors if e not in refused] == []
    assert len(refused) <= 1 and (not refused or "cancel" in (first, second))
    pair = (first, second) if (first, second) in SERIAL_ENDS else (second, first)
    assert end_state(storage, service) in SERIAL_ENDS[pair]


NEW_MOBILE = "^PRN^CP^^1^312^5550199"


def hl7_ack(feed: Feed, message: str) -> str:
    """Send one HL7 message as a dropped file; its acknowledgement code."""
    (reply,) = feed.handler.handle_file(message.replace("\r", "\n").encode("utf-8"))
    return str(hl7.parse(reply.ack).segment("MSA")(1))


@pytest.mark.parametrize("first", ["console", "hl7"])
def test_a_console_edit_while_an_s13_moves_the_appointment_keeps_both(
    database_url: str, tmp_path: Path, first: str
) -> None:
    with open_feed(tmp_path, database_url) as feed:
        storage = feed.app.storage
        database = storage.database
        pausing = PatientsThatPause(database)
        pausing.armed = False
        paused = dataclasses.replace(storage, patients=pausing)
        catalog = feed.app.catalog
        console = EnrollmentService(
            paused if first == "console" else storage, catalog, clock=feed.clock
        )
        if first == "hl7":
            feed.service.enrollment_for = lambda actor: EnrollmentService(
                paused, catalog, clock=feed.clock
            )
        assert hl7_ack(feed, siu("S12")) == "AA"
        pausing.armed = True
        s13 = siu("S13", "MSG0002", "20270301100000", start="20270320143000+0000", phone=NEW_MOBILE)
        acks: list[str] = []
        works: dict[str, Callable[[], object]] = {
            "console": lambda: console.update_patient(
                "MRN1", PatientChanges(email=NEW_EMAIL), dry_run=False
            ),
            "hl7": lambda: acks.append(hl7_ack(feed, s13)),
        }
        errors = race(
            works[first],
            works["hl7" if first == "console" else "console"],
            reached=pausing.reached,
            go=pausing.go,
            second_waits=(lambda: waiting_for(database, pausing.backend_pid))
            if database.concurrent_writers
            else None,
        )

        assert errors == []
        assert acks == ["AA"]
        check = EnrollmentService(storage, catalog, clock=feed.clock)
        details = storage.patients.enrollment_details(storage.patients.enrollment_id("MRN1")[0])
        moved_to = (details.enrollment.procedure_date, details.enrollment.procedure_time)
        contact = (details.patient.email, details.patient.phone)
        replan = check.update_patient("MRN1", PatientChanges(), dry_run=True)
        assert [c for c in replan.changes if c.changed] == [], "messages of another date"
        assert (moved_to, contact) == (
            (date(2027, 3, 20), dt_time(9, 30)),  # 14:30 UTC in Chicago
            (NEW_EMAIL, "+13125550199"),
        )


class InboundThatPauses(InboundRepository):
    """The edit's inbound store: pauses before it locks the number the patient is given (the
    patient's row already locked), until the test lets it go."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.reached = threading.Event()
        self.go = threading.Event()
        self.backend_pid: int | None = None

    def lock_numbers(self, phones: Collection[str]) -> None:
        with self.database.session() as session:
            self.backend_pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        self.reached.set()
        assert self.go.wait(WAIT), "the test never let the edit go on"
        super().lock_numbers(phones)


@pytest.fixture
def postgres_storage(postgres_url: str) -> Iterator[Storage]:
    """Migrated, empty storage on PostgreSQL only: SQLite has one writer at a time, so
    nothing there can deadlock."""
    opened = Storage.open(postgres_url)
    yield opened
    opened.close()


@pytest.mark.postgres
def test_an_edit_and_an_enroll_giving_one_patient_the_same_new_number_do_not_deadlock(
    postgres_storage: Storage, tmp_path: Path
) -> None:
    """Both lock the patient's row before the number (an edit did; an enroll locked the
    number first, then waited for the row the edit held: PostgreSQL aborted one)."""
    storage = postgres_storage
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    service = enrolled(storage, catalog)
    pausing = InboundThatPauses(storage.database)
    editing = EnrollmentService(
        dataclasses.replace(storage, inbound=pausing), catalog, clock=lambda: NOW
    )
    number = "+13125550188"
    with_number = ana(BOOKED).model_copy(update={"phone": number, "sms_consent": True})
    errors = race(
        lambda: editing.update_patient(
            "MRN1", PatientChanges(phone=number, sms_consent=True), dry_run=False
        ),
        lambda: service.enroll_one(with_number),
        reached=pausing.reached,
        go=pausing.go,
        second_waits=lambda: waiting_for(storage.database, pausing.backend_pid),
    )

    assert errors == []
    assert end_state(storage, service) == ("active", BOOKED, OLD_EMAIL)
    assert storage.patients.patient_states(["MRN1"])["MRN1"].phone == number


@pytest.mark.postgres
def test_a_stop_while_a_batch_holds_a_patient_on_the_number_does_not_deadlock(
    postgres_storage: Storage, tmp_path: Path
) -> None:
    """An enroll holds its known patients, then the numbers it gives; a STOP takes the
    patients on its number before the number (it took the number first, then waited for a
    patient the enroll held while the enroll waited for the number: PostgreSQL aborted one).
    Here Bea is on the number already and the same batch gives it to Cal."""
    storage = postgres_storage
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    shared = "+13125550177"

    def on_shared(external_id: str, name: str) -> EnrollmentInput:
        return ana(BOOKED).model_copy(
            update={
                "external_id": external_id,
                "first_name": name,
                "phone": shared,
                "sms_consent": True,
            }
        )

    EnrollmentService(storage, catalog, clock=lambda: NOW).enroll_one(on_shared("B", "Bea"))
    pausing = InboundThatPauses(storage.database)
    batch = EnrollmentService(
        dataclasses.replace(storage, inbound=pausing), catalog, clock=lambda: NOW
    )
    replies = ReplyService(storage, catalog, CLINIC, clock=lambda: NOW)
    errors = race(
        lambda: batch.enroll([batch.validate(on_shared(*p)) for p in [("B", "Bea"), ("C", "Cal")]]),
        lambda: replies.handle_inbound(InboundSms("SMstop1", shared, "+15550100100", "STOP")),
        reached=pausing.reached,
        go=pausing.go,
        second_waits=lambda: waiting_for(storage.database, pausing.backend_pid),
    )

    assert errors == []
    with storage.database.engine.connect() as connection:
        opted_out = connection.execute(
            text("SELECT count(*) FROM patients WHERE sms_opted_out_at IS NOT NULL")
        ).scalar_one()
        pending_sms = connection.execute(
            text("SELECT count(*) FROM messages WHERE channel = 'sms' AND status = 'pending'")
        ).scalar_one()
    assert (opted_out, pending_sms) == (2, 0)
