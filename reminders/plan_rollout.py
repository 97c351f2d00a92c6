"""Rolling a plan file's current version out to its enrolled patients: what would change (the
summary `plans apply` and the console's Plans page show), and applying it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService
from reminders.plans.model import Plan
from reminders.plans.versions import version_problems
from reminders.schedule_diff import ChangeAction, ScheduleChange
from reminders.store.records import EnrollmentOutcome
from reminders.store.storage import Storage


@dataclass(frozen=True)
class PatientChange:
    """One pending message of one patient that the plan's version changes."""

    external_id: str
    change: ScheduleChange
    zone: str

    @property
    def retimed(self) -> bool:
        """False when only the plan version of an unmoved message changes."""
        change = self.change
        return change.action != ChangeAction.MOVE or change.old_due_at != change.new_due_at


@dataclass(frozen=True)
class Rollout:
    """What applying a plan file would do to the active enrollments on it."""

    plan: Plan
    enrollments: int
    changes: list[PatientChange]
    warnings: list[str]
    newer_version: int | None  # patients follow a newer version than the file's (a step back)
    misfits: list[str] = field(default_factory=list)  # left as they are: input no longer fits

    @property
    def visible(self) -> list[PatientChange]:
        """The changes that move, add, cancel or skip a message (not just relabel it)."""
        return [c for c in self.changes if c.retimed]

    @property
    def patients(self) -> int:
        """How many patients have at least one change."""
        return len({c.external_id for c in self.changes})

    @property
    def action_counts(self) -> Counter[str]:
        """How many messages each kind of visible change touches."""
        return Counter(str(c.change.action) for c in self.visible)

    @property
    def relabelled(self) -> int:
        """Messages that keep their time and only take the new version."""
        return len(self.changes) - len(self.visible)


class PlanRollout:
    """Preview and apply a plan file's version across its enrollments."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        service: EnrollmentService,
        on_applied: Callable[[], None] | None = None,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.service = service
        self.on_applied = on_applied

    def preview(self, plan_id: str) -> Rollout:
        """What applying would change; nothing is stored."""
        loaded = self.catalog.get(plan_id)
        plan = loaded.plan
        applied = [a for a in self.storage.patients.applied_versions() if a.plan_id == plan.id]
        warnings = [p.message for p in version_problems(loaded, applied)]
        newer = max((a.version for a in applied if a.version > plan.version), default=None)
        result = self.service.apply_plan(plan_id, dry_run=True)
        outcomes = result.outcomes
        misfits = [str(misfit) for misfit in result.misfits]
        return Rollout(plan, len(outcomes), self._changes(outcomes), warnings, newer, misfits)

    def apply(self, plan_id: str) -> int:
        """Apply the plan file's version; returns how many enrollments it went through."""
        count = len(self.service.apply_plan(plan_id, dry_run=False).outcomes)
        if self.on_applied is not None:
            self.on_applied()
        return count

    def _changes(self, outcomes: list[EnrollmentOutcome]) -> list[PatientChange]:
        changes: list[PatientChange] = []
        for outcome in outcomes:
            pending = [c for c in outcome.changes if c.changed]
            if pending:
                details = self.storage.patients.enrollment_details(outcome.enrollment_id)
                zone = details.patient.timezone
                changes.extend(PatientChange(outcome.external_id, c, zone) for c in pending)
        return changes
