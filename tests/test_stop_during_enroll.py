"""A STOP texted while a patient is being enrolled with that number is never missed by both.

On PostgreSQL (READ COMMITTED) the enroll used to ask whether the number texted STOP before
the STOP committed, and the STOP looked for patients on the number before the enroll
committed: the patient ended enrolled, with SMS pending, to a number that said STOP. Both now
hold the number (`InboundRepository.lock_numbers`) before they look, so one waits for the
other and then sees it.

The race is made, not hoped for, in either order: a store substituted into the first (the
enroll right after it asked, or the STOP right after it stopped the patients on the number)
holds its transaction open; the other then runs on another thread until it is done or waits
for the number; only then does the first commit. SQLite (one writer) runs the same steps.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from plan_fixtures import CLINIC, write_demo_plan
from race_fixtures import WAIT, race
from sqlalchemy import text

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import read_input
from reminders.replies.service import InboundSms, ReplyService
from reminders.store.consent import ConsentRepository
from reminders.store.database import Database
from reminders.store.inbound import InboundRepository
from reminders.store.reply_records import SmsStateChange, SmsStop
from reminders.store.storage import Storage

pytestmark = pytest.mark.usefixtures("database_url")

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
PHONE = "+13125550177"


class Pause:
    """Where the first transaction stops: it says so (`reached`) and stays open until `go`."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def here(self) -> None:
        self.reached.set()
        assert self.go.wait(WAIT), "the test never let the transaction commit"


class InboundThatPauses(InboundRepository):
    """The enroll's inbound store: pauses once it has answered which numbers stopped."""

    def __init__(self, database: Database, pause: Pause) -> None:
        super().__init__(database)
        self.pause = pause

    def opted_out_phones(self, phones: Collection[str]) -> set[str]:
        stopped = super().opted_out_phones(phones)
        self.pause.here()
        return stopped


class ConsentThatPauses(ConsentRepository):
    """The STOP's consent store: pauses once it has stopped the patients on the number."""

    def __init__(self, database: Database, pause: Pause) -> None:
        super().__init__(database)
        self.pause = pause

    def stop_sms(self, patient_ids: Any, change: SmsStateChange, **kwargs: Any) -> SmsStop:
        stop = super().stop_sms(patient_ids, change, **kwargs)
        self.pause.here()
        return stop


def waiting_for_number(database: Database, phone: str) -> bool:
    """Whether a transaction waits for this number's lock (PostgreSQL), seen from outside."""
    with database.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid::bigint = (hashtext(:phone)::bigint & 4294967295)"
            ),
            {"phone": phone},
        ).scalar_one()
    return bool(waiting)


@pytest.mark.parametrize("first", ["enroll", "stop"])
def test_a_stop_while_the_number_is_being_enrolled_opts_the_patient_out(
    storage: Storage, tmp_path: Path, first: str
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    pause = Pause()
    database = storage.database
    enroll_storage, stop_storage = storage, storage
    if first == "enroll":
        enroll_storage = dataclasses.replace(storage, inbound=InboundThatPauses(database, pause))
    else:
        stop_storage = dataclasses.replace(storage, consent=ConsentThatPauses(database, pause))
    enrolling = EnrollmentService(
        enroll_storage,
        catalog,
        clock=lambda: NOW,
        audit=AuditTrail(storage.access, Actor.user("nina"), lambda: NOW),
    )
    replies = ReplyService(stop_storage, catalog, CLINIC, clock=lambda: NOW)
    item = read_input(
        {
            "external_id": "MRN1",
            "first_name": "Ana",
            "phone": PHONE,
            "sms_consent": True,
            "timezone": "America/Chicago",
            "plan": "demo",
            "procedure_date": date(2027, 3, 10),
        }
    )
    works: dict[str, Callable[[], object]] = {
        "enroll": lambda: enrolling.enroll_one(item),
        "stop": lambda: replies.handle_inbound(
            InboundSms("SMstop1", PHONE, "+15550100100", "STOP")
        ),
    }
    errors = race(
        works[first],
        works["stop" if first == "enroll" else "enroll"],
        reached=pause.reached,
        go=pause.go,
        second_waits=(lambda: waiting_for_number(database, PHONE))
        if database.concurrent_writers
        else None,
    )

    assert errors == []
    with database.engine.connect() as connection:
        opted_out = connection.execute(
            text("SELECT sms_opted_out_at IS NOT NULL FROM patients WHERE phone = :phone"),
            {"phone": PHONE},
        ).scalar_one()
        pending_sms = connection.execute(
            text("SELECT count(*) FROM messages WHERE channel = 'sms' AND status = 'pending'")
        ).scalar_one()
    assert opted_out, "enrolled with SMS to a number that texted STOP meanwhile"
    assert pending_sms == 0
