"""One database handle and one repository per aggregate, opened and closed together."""

from __future__ import annotations

from dataclasses import dataclass

from reminders.store.access import AccessRepository
from reminders.store.consent import ConsentRepository
from reminders.store.database import Database
from reminders.store.early_reports import EarlyReportRepository
from reminders.store.fallbacks import FallbackRepository
from reminders.store.feeds import FeedRepository
from reminders.store.inbound import InboundRepository
from reminders.store.message_views import MessageViews
from reminders.store.outbox import Outbox
from reminders.store.outcomes import OutcomeRepository
from reminders.store.patient_lists import PatientLists
from reminders.store.patients import PatientRepository


@dataclass(frozen=True)
class Storage:
    """The repositories an app reads and writes through, all over the same database."""

    database: Database
    patients: PatientRepository
    patient_lists: PatientLists
    outbox: Outbox
    message_views: MessageViews
    inbound: InboundRepository
    consent: ConsentRepository
    fallbacks: FallbackRepository
    early_reports: EarlyReportRepository
    outcomes: OutcomeRepository
    access: AccessRepository
    feeds: FeedRepository

    @classmethod
    def over(cls, database: Database) -> Storage:
        """Every repository over one database handle."""
        return cls(
            database=database,
            patients=PatientRepository(database),
            patient_lists=PatientLists(database),
            outbox=Outbox(database),
            message_views=MessageViews(database),
            inbound=InboundRepository(database),
            consent=ConsentRepository(database),
            fallbacks=FallbackRepository(database),
            early_reports=EarlyReportRepository(database),
            outcomes=OutcomeRepository(database),
            access=AccessRepository(database),
            feeds=FeedRepository(database),
        )

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Storage:
        """Connect (migrating the schema by default) and build the repositories."""
        return cls.over(Database.open(url, migrate_schema=migrate_schema))

    def close(self) -> None:
        """Release the database."""
        self.database.close()
