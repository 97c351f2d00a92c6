"""The audit trail: services record every change they make, with who asked for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from reminders.access.actor import Actor
from reminders.clock import utc_now
from reminders.store.access import AccessRepository
from reminders.store.access_records import NewAuditEntry


class AuditTrail:
    """Appends to the audit log in the name of one actor (a user, an API key, the CLI)."""

    def __init__(
        self,
        repository: AccessRepository,
        actor: Actor,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.actor = actor
        self.clock = clock

    def record(self, action: str, external_id: str | None = None, detail: str = "") -> None:
        """One change, now."""
        self.record_many([(action, external_id, detail)])

    def record_many(self, changes: Iterable[tuple[str, str | None, str]]) -> None:
        """Several changes made by one request (an import, a plan rollout), in one write."""
        actor = str(self.actor)
        entries = [NewAuditEntry(actor, action, eid, detail) for action, eid, detail in changes]
        self.repository.append_audit(entries, self.clock())
