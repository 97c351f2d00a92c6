"""Delivery reports that came before their send was recorded, kept until they can apply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, exists, insert, or_, select

from reminders.store.changes import notify_dispatchers
from reminders.store.database import Database
from reminders.store.inbound_schema import EarlyReport
from reminders.store.schema import Message


@dataclass(frozen=True)
class KeptReport:
    id: int
    provider_message_id: str
    status: str
    error_code: str | None
    received_at: datetime


@dataclass
class TakenReports:
    """The kept reports a pass took; those it `remove`s leave the table when it commits."""

    reports: list[KeptReport]
    removed: list[int] = field(default_factory=list)

    def remove(self, report: KeptReport) -> None:
        """Take `report` off the table with the pass's transaction (applied, or dropped)."""
        self.removed.append(report.id)


class EarlyReportRepository:
    """A small table, empty but for the ~100 ms a batch's outcomes wait for their commit."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def keep(
        self, provider_message_id: str, status: str, error_code: str | None, now: datetime
    ) -> None:
        """Keep a report whose message is not recorded yet; a dispatcher in another process
        hears of it at the commit (PostgreSQL) and applies it after its next pass."""
        with self.database.session() as session:
            session.execute(
                insert(EarlyReport).values(
                    provider_message_id=provider_message_id,
                    status=status,
                    error_code=error_code,
                    received_at=now,
                )
            )
            notify_dispatchers(session)

    def kept(self) -> list[KeptReport]:
        """Every kept report, oldest first."""
        with self.database.session() as session:
            rows = session.execute(select(EarlyReport).order_by(EarlyReport.id)).scalars()
            return [_kept(row) for row in rows]

    def any_kept(self) -> bool:
        """Whether any report is kept (one read of a usually empty table, no write lock)."""
        with self.database.session() as session:
            return session.scalar(select(EarlyReport.id).limit(1)) is not None

    @contextmanager
    def take_ready(self, kept_until: datetime) -> Iterator[TakenReports]:
        """The reports whose send is recorded by now and those kept since `kept_until` or
        before, taken for the block to apply; every other row is left as it is.

        The block runs in one transaction (`Database.transaction`: the unit of work in
        progress, or one of its own). The reports it `remove`s leave the table when it ends,
        with everything it wrote through the repositories: a process killed before then, or an
        error leaving the block, leaves every one of them for a later pass, and nothing the
        block did with them is kept. Twilio does not post a report again.

        Two dispatchers never take one report at once: on PostgreSQL the rows are locked as
        they are chosen, until the block ends, and rows another dispatcher is taking are
        skipped, not waited for; SQLite runs one writing transaction at a time.
        """
        recorded = exists().where(Message.provider_message_id == EarlyReport.provider_message_id)
        ready = (
            select(EarlyReport)
            .where(or_(recorded, EarlyReport.received_at <= kept_until))
            .order_by(EarlyReport.id)
            .with_for_update(skip_locked=True)
        )
        with self.database.transaction() as session:
            taken = TakenReports([_kept(row) for row in session.scalars(ready)])
            yield taken
            if taken.removed:
                session.execute(
                    delete(EarlyReport)
                    .where(EarlyReport.id.in_(taken.removed))
                    .execution_options(synchronize_session=False)
                )


def _kept(row: EarlyReport) -> KeptReport:
    return KeptReport(row.id, row.provider_message_id, row.status, row.error_code, row.received_at)
