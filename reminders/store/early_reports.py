"""Delivery reports that came before their send was recorded, kept until they can apply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    def take_ready(self, kept_until: datetime) -> Iterator[list[KeptReport]]:
        """Take off the table the reports whose send is recorded by now and those kept since
        `kept_until` or before, for the block to apply; every other row is left as it is.

        They leave the table only when the block's transaction commits (`Database.transaction`:
        the unit of work in progress, or one of its own), with everything the block writes
        through the repositories: a process killed before then, or an error, leaves them for a
        later pass, and nothing the block did with them half-way is kept. Twilio does not post
        a report again.

        Two dispatchers never take one report at once: on PostgreSQL the rows are locked as
        they are chosen, until the block ends, and rows another dispatcher is taking are
        skipped, not waited for; SQLite runs one writing transaction at a time.
        """
        recorded = exists().where(Message.provider_message_id == EarlyReport.provider_message_id)
        ready = (
            select(EarlyReport.id)
            .where(or_(recorded, EarlyReport.received_at <= kept_until))
            .with_for_update(skip_locked=True)
        )
        with self.database.transaction() as session:
            rows = session.execute(
                delete(EarlyReport)
                .where(EarlyReport.id.in_(ready))
                .execution_options(synchronize_session=False)
                .returning(
                    EarlyReport.id,
                    EarlyReport.provider_message_id,
                    EarlyReport.status,
                    EarlyReport.error_code,
                    EarlyReport.received_at,
                )
            ).all()
            yield [
                KeptReport(r.id, r.provider_message_id, r.status, r.error_code, r.received_at)
                for r in rows
            ]


def _kept(row: EarlyReport) -> KeptReport:
    return KeptReport(row.id, row.provider_message_id, row.status, row.error_code, row.received_at)
