"""Email Message-IDs are unique across databases (a staging and a production database number
their rows alike) and stay the same for every attempt at one message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from smtp_fixtures import SmtpTestServer
from sqlalchemy import select

from reminders.catalog import PlanCatalog
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.schema import Message
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def send_one_email(url: str, catalog: PlanCatalog, smtp: SmtpTestServer) -> None:
    storage = Storage.open(url)
    now = datetime.now(UTC)
    storage.patients.enroll_many(due_now_requests(catalog, now, 1, channel="email"), now)
    email = SmtpEmailChannel(
        smtp.host, smtp.port, from_address="clinic@example.org", starttls=False, timeout=5
    )
    settings = DispatchSettings(clinic=CLINIC)
    channels = {"sms": InMemoryChannel("sms"), "email": email}
    assert Dispatcher(storage, catalog, channels, settings).run_once().outcomes == {"sent": 1}
    email.close()
    storage.close()


def test_the_same_row_in_two_databases_gets_two_message_ids(
    tmp_path: Path, smtp: SmtpTestServer
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    staging = f"sqlite:///{tmp_path / 'staging.sqlite3'}"
    production = f"sqlite:///{tmp_path / 'production.sqlite3'}"

    send_one_email(staging, catalog, smtp)
    send_one_email(production, catalog, smtp)

    ids = [received.parsed()["Message-ID"] for received in smtp.received]
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert all(i.startswith("<reminder-") and i.endswith("@example.org>") for i in ids)


def test_every_row_gets_its_own_uid(tmp_path: Path, database_url: str) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    storage = Storage.open(database_url)
    storage.patients.enroll_many(
        due_now_requests(catalog, now, 50, steps=("discharge", "week-one")), now
    )
    with storage.database.session() as session:
        uids = list(session.scalars(select(Message.uid)))
    storage.close()

    assert None not in uids
    assert len(set(uids)) == len(uids) == 100
