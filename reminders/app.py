"""The composition root: builds the storage, plans, channels and services from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.access.passwords import Passwords
from reminders.access.service import AccessPolicy, AccessService
from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.clock import utc_now
from reminders.consent import SmsConsentService
from reminders.csv_import import CsvImport
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.enrollment import EnrollmentService
from reminders.plan_check.check import CheckResult, check_paths
from reminders.plan_rollout import PlanRollout
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
    _passwords: Passwords | None = field(default=None, init=False)
    _files: tuple[tuple[tuple[str, int, int], ...], PlanCatalog, CheckResult] | None = field(
        default=None, init=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> App:
        """Open the database (migrating it) and point at the plan and template folders."""
        storage = Storage.open(settings.database_url)
        return cls(settings, storage, PlanCatalog(settings.plans_dir, settings.templates_dir))

    @property
    def clinic(self) -> Clinic:
        """Who the messages come from."""
        return Clinic.from_settings(self.settings)

    def audit(self, actor: Actor) -> AuditTrail:
        """The audit log, written in `actor`'s name."""
        return AuditTrail(self.storage.access, actor)

    def enrollment(self, actor: Actor, catalog: PlanCatalog | None = None) -> EnrollmentService:
        """The enrollment operations, recorded in the audit log as `actor`'s (over `catalog`,
        else the plans this app runs)."""
        return EnrollmentService(
            self.storage,
            catalog or self.catalog,
            default_region=self.settings.default_region,
            default_language=self.settings.default_language,
            audit=self.audit(actor),
        )

    def csv_import(self, actor: Actor) -> CsvImport:
        """Patients from a CSV file (dry run or import), recorded as `actor`'s enrollments."""
        return CsvImport(self.enrollment(actor))

    def sms_consent(self, actor: Actor) -> SmsConsentService:
        """Stopping and resuming SMS to patients, recorded in the audit log as `actor`'s."""
        return SmsConsentService(self.storage, self.catalog, self.audit(actor))

    def plan_rollout(self, actor: Actor) -> PlanRollout:
        """Preview and apply plan versions, recorded as `actor`'s.

        It reads the plan files as they are now (a running service keeps the plans it loaded);
        once a version is applied, this app reloads its plans to run it too.
        """
        files = self.plan_files()
        return PlanRollout(
            self.storage, files, self.enrollment(actor, files), on_applied=self.catalog.reload
        )

    def plan_files(self) -> PlanCatalog:
        """The plan files as they are now: read again only when a file changed since."""
        return self._plan_files()[1]

    def check_plan_files(self) -> CheckResult:
        """`plans check` of the files as they are now (kept until a file changes)."""
        return self._plan_files()[2]

    def _plan_files(self) -> tuple[tuple[tuple[str, int, int], ...], PlanCatalog, CheckResult]:
        plans, templates = self.settings.plans_dir, self.settings.templates_dir
        stamp = files_stamp(plans, templates)
        if self._files is None or self._files[0] != stamp:
            self._files = (stamp, PlanCatalog(plans, templates), check_paths([plans], templates))
        return self._files

    def replies(self, *, clock: Callable[[], datetime] = utc_now) -> ReplyService:
        """The service that acts on inbound SMS and delivery reports, and flags relief checks
        left unanswered for the configured window."""
        return ReplyService(
            self.storage,
            self.catalog,
            self.clinic,
            clock=clock,
            no_reply_after=timedelta(hours=self.settings.no_reply_after_hours),
        )

    def access(self) -> AccessService:
        """Staff users, sign-in, sessions and API keys."""
        if self._passwords is None:
            self._passwords = Passwords(self.settings.password_hash_memory_kib)
        s = self.settings
        policy = AccessPolicy(
            session_timeout=timedelta(minutes=s.session_timeout_minutes),
            lock_after=s.sign_in_lock_after,
            lock_for=timedelta(minutes=s.sign_in_lock_minutes),
        )
        return AccessService(self.storage.access, self._passwords, policy)

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


def files_stamp(*folders: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under the folders with its modification time and size: equal while no file
    was added, removed or changed."""
    found = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)
