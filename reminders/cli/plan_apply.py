"""`reminders plans apply PLAN`: move enrolled patients to the plan file's current version."""

from __future__ import annotations

import sys
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
from reminders.cli.state import get_state

if TYPE_CHECKING:
    from reminders.plan_rollout import PatientChange, Rollout


def _change_json(item: PatientChange) -> dict[str, Any]:
    """The change with local (patient zone) and UTC instants."""
    change = item.change
    return {
        "external_id": item.external_id,
        "step_id": change.step_id,
        "action": change.action,
        "old_local": local_iso(change.old_due_at, item.zone),
        "new_local": local_iso(change.new_due_at, item.zone),
        "old_utc": utc_iso(change.old_due_at),
        "new_utc": utc_iso(change.new_due_at),
        "reason": change.reason,
    }


def _change_cells(item: PatientChange) -> list[str | None]:
    """A table row."""
    change = item.change
    return [
        item.external_id,
        change.step_id,
        change.action,
        local_time(change.old_due_at, item.zone),
        local_time(change.new_due_at, item.zone),
        change.reason,
    ]


def _show_changes(rollout: Rollout) -> None:
    plan = rollout.plan
    if not rollout.changes:
        echo_line(
            f"all {rollout.enrollments} active enrollment(s) on {plan.id} already follow "
            f"v{plan.version}"
        )
        return
    stdout().print(
        table(
            f"{plan.id} v{plan.version}: changes to pending messages",
            ["Patient", "Step", "Change", "Old (local)", "New (local)", "Reason"],
            (_change_cells(c) for c in rollout.visible),
        )
    )
    summary = f"{rollout.patients} of {rollout.enrollments} enrollment(s) change: "
    summary += counts_line(rollout.action_counts)
    if rollout.relabelled:
        summary += f"; {rollout.relabelled} message(s) keep their time, now v{plan.version}"
    echo_line(summary)


def apply(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Show what the plan file's current version changes for enrolled patients; apply it."""
    state = get_state(ctx)
    rollouts = state.app.plan_rollout(state.actor)
    rollout = rollouts.preview(plan_id)
    plan = rollout.plan
    if json_output:
        done = bool(rollout.changes) and yes
        if done:
            rollouts.apply(plan_id)
        print_json(
            {
                "plan_id": plan.id,
                "version": plan.version,
                "enrollments": rollout.enrollments,
                "applied": done,
                "warnings": rollout.warnings,
                "misfits": rollout.misfits,
                "changes": [_change_json(c) for c in rollout.changes],
            }
        )
        return
    for warning in rollout.warnings:
        echo_line(f"warning: {warning}")
    for misfit in rollout.misfits:
        echo_line(f"not applied (stored attributes do not fit the plan): {misfit}")
    _show_changes(rollout)
    if not rollout.changes:
        return
    question = f"Apply {plan.id} v{plan.version} now?"
    if rollout.newer_version is not None:
        question = (
            f"Move patients on {plan.id} v{rollout.newer_version} back to the older "
            f"v{plan.version}?"
        )
    if yes or (sys.stdin.isatty() and typer.confirm(question)):
        applied = rollouts.apply(plan_id)
        echo_line(f"applied {plan.id} v{plan.version} to {applied} enrollment(s)")
    else:
        echo_line("dry run: nothing changed; run again with --yes to apply")
