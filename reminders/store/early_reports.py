"""Delivery reports that came before their send was recorded, kept until they can apply."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from reminders.store.database import Database
from reminders.store.inbound_schema import EarlyReport


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
        """Keep a report whose message is not recorded yet."""
        with self.database.session() as session:
            session.execute(
                insert(EarlyReport).values(
                    provider_message_id=provider_message_id,
                    status=status,
                    error_code=error_code,
                    received_at=now,
                )
            )

    def kept(self) -> list[KeptReport]:
        """Every kept report, oldest first (one read of a usually empty table)."""
        with self.database.session() as session:
            rows = session.execute(select(EarlyReport).order_by(EarlyReport.id)).scalars()
            return [
                KeptReport(
                    row.id, row.provider_message_id, row.status, row.error_code, row.received_at
                )
                for row in rows
            ]

    def remove(self, ids: Collection[int]) -> int:
        """Forget these kept reports (applied, or too old); how many were still there."""
        if not ids:
            return 0
        with self.database.session() as session:
            result = session.execute(delete(EarlyReport).where(EarlyReport.id.in_(list(ids))))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
