"""`reminders plans apply PLAN`: move enrolled patients to the plan file's current version."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reminders.cli.options import JsonOption
from reminders.cli.output import (
    counts_line,
    echo_line,
    local_iso,
    local_time,
    print_json,
    stdout,
    table,
    utc_iso,
)
from reminders.cli.state import CliState, get_state

if TYPE_CHECKING:
    from reminders.plans.model import Plan
    from reminders.store.records import EnrollmentOutcome, ScheduleChange


@dataclass(frozen=True)
class PatientChange:
    """One pending message of one patient that a plan version changes."""

    external_id: str
    change: ScheduleChange
    zone: str

    @property
    def retimed(self) -> bool:
        """False when only the plan version of an unmoved message changes."""
        return self.change.action != "move" or self.change.old_due_at != self.change.new_due_at

    def to_json(self) -> dict[str, Any]:
        """The change with local (patient zone) and UTC instants."""
        change = self.change
        return {
            "external_id": self.external_id,
            "step_id": change.step_id,
            "action": change.action,
            "old_local": local_iso(change.old_due_at, self.zone),
            "new_local": local_iso(change.new_due_at, self.zone),
            "old_utc": utc_iso(change.old_due_at),
            "new_utc": utc_iso(change.new_due_at),
            "reason": change.reason,
        }

    def cells(self) -> list[str | None]:
        """A table row."""
        change = self.change
        return [
            self.external_id,
            change.step_id,
            change.action,
            local_time(change.old_due_at, self.zone),
            local_time(change.new_due_at, self.zone),
            change.reason,
        ]


def _patient_changes(state: CliState, outcomes: list[EnrollmentOutcome]) -> list[PatientChange]:
    changes: list[PatientChange] = []
    for outcome in outcomes:
        pending = [c for c in outcome.changes if c.action != "keep"]
        if pending:
            details = state.app.storage.patients.enrollment_details(outcome.enrollment_id)
            zone = details["patient"]["timezone"]
            changes.extend(PatientChange(outcome.external_id, c, zone) for c in pending)
    return changes


def _show_changes(plan: Plan, enrollments: int, changes: list[PatientChange]) -> None:
    if not changes:
        echo_line(
            f"all {enrollments} active enrollment(s) on {plan.id} already follow v{plan.version}"
        )
        return
    visible = [c for c in changes if c.retimed]
    stdout().print(
        table(
            f"{plan.id} v{plan.version}: changes to pending messages",
            ["Patient", "Step", "Change", "Old (local)", "New (local)", "Reason"],
            (c.cells() for c in visible),
        )
    )
    patients = len({c.external_id for c in changes})
    summary = f"{patients} of {enrollments} enrollment(s) change: "
    summary += counts_line(Counter(c.change.action for c in visible))
    if len(visible) < len(changes):
        summary += (
            f"; {len(changes) - len(visible)} message(s) keep their time, now v{plan.version}"
        )
    echo_line(summary)


def apply(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Show what the plan file's current version changes for enrolled patients; apply it."""
    from reminders.plans.versions import version_problems

    state = get_state(ctx)
    loaded = state.app.catalog.get(plan_id)
    plan = loaded.plan
    applied = [a for a in state.app.storage.patients.applied_versions() if a.plan_id == plan.id]
    warnings = [p.message for p in version_problems(loaded, applied)]
    newer = max((a.version for a in applied if a.version > plan.version), default=None)
    service = state.enrollment()
    outcomes = service.apply_plan(plan_id, dry_run=True)
    changes = _patient_changes(state, outcomes)
    if json_output:
        done = bool(changes) and yes
        if done:
            service.apply_plan(plan_id, dry_run=False)
        print_json(
            {
                "plan_id": plan.id,
                "version": plan.version,
                "enrollments": len(outcomes),
                "applied": done,
                "warnings": warnings,
                "changes": [c.to_json() for c in changes],
            }
        )
        return
    for warning in warnings:
        echo_line(f"warning: {warning}")
    _show_changes(plan, len(outcomes), changes)
    if not changes:
        return
    question = f"Apply {plan.id} v{plan.version} now?"
    if newer is not None:
        question = f"Move patients on {plan.id} v{newer} back to the older v{plan.version}?"
    if yes or (sys.stdin.isatty() and typer.confirm(question)):
        service.apply_plan(plan_id, dry_run=False)
        echo_line(f"applied {plan.id} v{plan.version} to {len(outcomes)} enrollment(s)")
    else:
        echo_line("dry run: nothing changed; run again with --yes to apply")
