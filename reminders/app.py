"""The composition root: builds the storage, plans, channels and services from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.clock import utc_now
from reminders.dispatch.dispatcher import Dispatcher, DispatchSettings
from reminders.enrollment import EnrollmentService
from reminders.replies.service import ReplyService
from reminders.settings import Settings
from reminders.store.storage import Storage
from reminders.templating.context import Clinic


@dataclass
class App:
    """Everything a front end (CLI, HTTP, service) needs, wired once."""

    settings: Settings
    storage: Storage
    catalog: PlanCatalog

    @classmethod
    def from_settings(cls, settings: Settings) -> App:
        """Open the database (migrating it) and point at the plan and template folders."""
        storage = Storage.open(settings.database_url)
        return cls(settings, storage, PlanCatalog(settings.plans_dir, settings.templates_dir))

    @property
    def clinic(self) -> Clinic:
        """Who the messages come from."""
        return Clinic.from_settings(self.settings)

    def enrollment(self) -> EnrollmentService:
        """The enrollment operations."""
        return EnrollmentService(
            self.storage, self.catalog, default_region=self.settings.default_region
        )

    def replies(self, *, clock: Callable[[], datetime] = utc_now) -> ReplyService:
        """The service that acts on inbound SMS and delivery reports."""
        return ReplyService(self.storage, self.catalog, self.enrollment(), self.clinic, clock=clock)

    def dispatch_settings(self) -> DispatchSettings:
        """Dispatcher knobs from the service settings."""
        s = self.settings
        return DispatchSettings(
            clinic=self.clinic,
            batch_size=s.dispatch_batch_size,
            max_attempts=s.max_attempts,
            retry_base_seconds=s.retry_base_seconds,
            claim_timeout=timedelta(seconds=s.claim_timeout_seconds),
            per_second={"sms": s.sms_per_second, "email": s.email_per_second},
        )

    def dispatcher(self, channels: dict[str, Channel] | None = None) -> Dispatcher:
        """A dispatcher over the configured channels (console when none is configured)."""
        if channels is None:
            from reminders.channels.registry import build_channels

            channels = build_channels(self.settings)
        return Dispatcher(self.storage, self.catalog, channels, self.dispatch_settings())

    def close(self) -> None:
        """Release the database."""
        self.storage.close()
