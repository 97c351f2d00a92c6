"""`reminders plans ...`: check plan files, preview a timeline, apply a new plan version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reminders.cli import plan_apply, plan_preview
from reminders.cli.options import command_group
from reminders.cli.output import echo_line, stdout, table
from reminders.cli.plan_preview import WIDE
from reminders.cli.state import get_state
from reminders.cli.texts import with_subject
from reminders.errors import PlanProblem

if TYPE_CHECKING:
    from reminders.plan_check.check import RenderedSample

app = command_group("Check, preview and roll out plan files.")
app.command("preview")(plan_preview.preview)
app.command("apply")(plan_apply.apply)

SHOWN_SAMPLES = 200


def format_problem(problem: PlanProblem) -> str:
    """`file:line: field: message`, with warnings marked as such."""
    where = f"{problem.file}:{problem.line}" if problem.line is not None else problem.file
    marker = "warning: " if problem.severity == "warning" else ""
    return f"{where}: {problem.field}: {marker}{problem.message}"


def _sample_row(sample: RenderedSample, with_text: bool) -> list[str]:
    size = sample.message.sms
    sms = f"{size.segments} × {size.encoding} ({size.units} chars)" if size else ""
    row = [sample.plan_id, sample.step_id, sample.channel, sample.language, sms]
    if with_text:
        row.append(_clip(with_subject(sample.message).replace("\n", " "), 70))
    return row


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("check")
def check(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Plan files or folders (default: the plans folder in settings)."),
    ] = None,
    samples: Annotated[
        bool, typer.Option("--samples", help="Also show every template rendered for a sample.")
    ] = False,
) -> None:
    """Validate plan files and their templates; exit 1 when any error is found."""
    from reminders.plan_check.check import check_paths
    from reminders.plan_check.misfits import misfit_problems
    from reminders.plans.versions import version_problems
    from reminders.store.applied import applied_versions_at, enrolled_attributes_at

    settings = get_state(ctx).settings
    result = check_paths(paths or [settings.plans_dir], settings.templates_dir)
    applied = applied_versions_at(settings.database_url) if result.plans else []
    declaring = any(loaded.plan.attributes for loaded in result.plans)
    enrolled = enrolled_attributes_at(settings.database_url) if declaring else []
    for loaded in result.plans:
        result.problems.extend(version_problems(loaded, applied))
        result.problems.extend(misfit_problems(loaded, enrolled))
    for problem in result.problems:
        echo_line(format_problem(problem))
    if samples and result.samples:
        console = stdout()
        with_text = console.width >= WIDE  # narrow terminals: `plans preview` shows the texts
        columns = ["Plan", "Step", "Channel", "Lang", "SMS size"] + (["Text"] if with_text else [])
        rows = (_sample_row(s, with_text) for s in result.samples[:SHOWN_SAMPLES])
        console.print(table("Rendered samples", columns, rows))
        if len(result.samples) > SHOWN_SAMPLES:
            hidden = len(result.samples) - SHOWN_SAMPLES
            echo_line(f"... and {hidden} more sample(s); `plans preview` shows every text")
    plans = ", ".join(f"{p.plan.id} v{p.plan.version}" for p in result.plans) or "no plans"
    echo_line(f"checked {plans}: {len(result.errors)} error(s), {len(result.warnings)} warning(s)")
    if result.errors:
        raise typer.Exit(1)
