"""Outcomes are committed in groups, yet every message still goes out exactly once: a worker
that dies before committing leaves its sends to reconciliation, and email (which cannot be
looked up at the provider) is still committed send by send."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from smtp_fixtures import SmtpTestServer
from sqlalchemy import func, select

from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.schema import Message, MessageStatus
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
SETTINGS = DispatchSettings(clinic=CLINIC, batch_size=50)


class Killed(BaseException):
    """The worker process dies (nothing below the dispatcher catches this)."""


def committed_sent(storage: Storage) -> int:
    with storage.database.session() as session:
        query = select(func.count()).where(Message.status == MessageStatus.SENT.value)
        return int(session.scalar(query) or 0)


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    opened = Storage.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def catalog(tmp_path: Path) -> PlanCatalog:
    return PlanCatalog(*write_demo_plan(tmp_path))


def enroll(storage: Storage, catalog: PlanCatalog, count: int, channel: str = "sms") -> None:
    storage.patients.enroll_many(due_now_requests(catalog, NOW, count, channel=channel), NOW)


def dispatcher(storage: Storage, catalog: PlanCatalog, **channels: Channel) -> Dispatcher:
    both: dict[str, Channel] = {"sms": InMemoryChannel("sms"), "email": InMemoryChannel("email")}
    return Dispatcher(storage, catalog, {**both, **channels}, SETTINGS, worker_id="w1")


def test_a_batch_of_texts_is_committed_together(storage: Storage, catalog: PlanCatalog) -> None:
    enroll(storage, catalog, 20)
    seen_while_sending: list[int] = []

    class Watching(InMemoryChannel):
        def send(self, message: OutgoingMessage) -> DeliveryReceipt:
            seen_while_sending.append(committed_sent(storage))
            return super().send(message)

    with freeze_time(NOW):
        report = dispatcher(storage, catalog, sms=Watching("sms")).run_once()

    assert report.outcomes == {"sent": 20}
    assert seen_while_sending == [0] * 20  # nothing committed until the batch ends
    assert committed_sent(storage) == 20


def test_a_worker_killed_before_its_commit_has_its_texts_reconciled_not_resent(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 20)
    provider = InMemoryChannel("sms")  # the provider outlives the worker
    doomed = dispatcher(storage, catalog, sms=provider)

    def die() -> int:
        raise Killed

    doomed.outbox.flush_outcomes = die  # type: ignore[method-assign]
    with freeze_time(NOW), pytest.raises(Killed):
        doomed.run_once()
    assert len(provider.sent) == 20 and committed_sent(storage) == 0

    later = NOW + SETTINGS.claim_timeout + timedelta(seconds=1)
    with freeze_time(later):
        report = dispatcher(storage, catalog, sms=provider).run_once()

    assert report.outcomes == {"reconciled": 20}
    assert len(provider.sent) == 20  # each text once: looked up, never sent again
    assert committed_sent(storage) == 20


def test_each_email_is_committed_before_the_next_is_sent(
    storage: Storage, catalog: PlanCatalog
) -> None:
    enroll(storage, catalog, 5, channel="email")
    seen_while_sending: list[int] = []

    class Watching(SmtpEmailChannel):  # the real SMTP channel: it cannot look back
        def send(self, message: OutgoingMessage) -> DeliveryReceipt:
            seen_while_sending.append(committed_sent(storage))
            return super().send(message)

    with SmtpTestServer() as server:
        email = Watching(
            server.host, server.port, from_address="clinic@example.org", starttls=False
        )
        with freeze_time(NOW, real_asyncio=True):
            report = dispatcher(storage, catalog, email=email).run_once()
        email.close()

    assert report.outcomes == {"sent": 5}
    assert seen_while_sending == [0, 1, 2, 3, 4]
    assert len(server.received) == 5


def test_every_kind_of_outcome_in_one_flush_is_written_as_recorded(
    storage: Storage, catalog: PlanCatalog
) -> None:
    """One flush holds sends, a deferral, a retry, a failure and a skip (on PostgreSQL one
    statement per kind, from arrays); each row gets its own values, and a message recorded
    twice keeps its first outcome."""
    enroll(storage, catalog, 5)
    outbox = storage.outbox.grouped(lambda: NOW)
    sent, deferred, retried, failed, skipped = (m.id for m in outbox.claim_due(NOW, "w1", 10))
    later = NOW + timedelta(hours=3, minutes=7)
    outbox.record_sent(
        sent,
        NOW,
        provider_message_id="SM1",
        provider_status="queued",
        recipient="+12025550001",
        subject=None,
        body="Hello",
        worker="w1",
    )
    outbox.record_deferred(deferred, NOW, later, "quiet hours", send_before=later, worker="w1")
    outbox.record_retry(retried, NOW, later, "will retry", "20429", worker="w1")
    outbox.record_failed(failed, NOW, "refused", "21211", worker="w1")
    outbox.record_skipped(skipped, NOW, "no SMS consent", worker="w1")
    outbox.record_failed(sent, NOW, "recorded second", "x", worker="w1")
    outbox.record_sent(  # another worker's claim: left alone
        skipped,
        NOW,
        provider_message_id="SM2",
        provider_status="queued",
        recipient="+12025550002",
        subject=None,
        body="Not ours",
        worker="w2",
    )

    assert outbox.flush_outcomes() == 7
    with storage.database.session() as session:
        rows = {row.id: row for row in session.scalars(select(Message))}.__getitem__
    assert (rows(sent).status, rows(sent).provider_message_id, rows(sent).body) == (
        "sent",
        "SM1",
        "Hello",
    )
    assert rows(sent).sent_at == NOW and rows(sent).error_code is None
    assert (rows(deferred).status, rows(deferred).attempts) == ("pending", 0)
    assert rows(deferred).next_attempt_at == later and rows(deferred).send_before == later
    assert rows(deferred).claimed_by is None and rows(deferred).claimed_at is None
    assert (rows(retried).status, rows(retried).attempts, rows(retried).error_code) == (
        "pending",
        1,
        "20429",
    )
    assert rows(retried).next_attempt_at == later
    assert (rows(failed).status, rows(failed).error_code) == ("failed", "21211")
    assert (rows(skipped).status, rows(skipped).status_reason) == ("skipped", "no SMS consent")
    assert rows(skipped).body is None
