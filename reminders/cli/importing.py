"""`reminders import FILE.csv`: enroll many patients at once, reporting every bad row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reminders.cli.errors import EXIT_BAD_INPUT
from reminders.cli.options import JsonOption
from reminders.cli.output import echo_line, print_json, stderr
from reminders.cli.state import get_state
from reminders.errors import EnrollmentError

if TYPE_CHECKING:
    from rich.progress import Progress

    from reminders.csv_import import ImportSummary

BATCH_SIZE = 1000
SHOWN_PROBLEMS = 100


def _count_lines(path: Path) -> int:
    """Lines after the header (a progress total; fails early on a file that is not UTF-8)."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return max(sum(1 for _ in stream) - 1, 0)


def _progress(disabled: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
        disable=disabled,
    )


def import_csv(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count; store nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Enroll or update patients from a CSV file; exit 1 when any row was rejected."""
    from reminders.csv_import import ImportSummary, batched, parse_rows, read_rows

    state = get_state(ctx)
    try:
        total = _count_lines(file)
    except UnicodeDecodeError as exc:
        echo_line(f"error: {file}: not UTF-8 text ({exc.reason}); save it as UTF-8 CSV", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    service = state.enrollment()
    summary = ImportSummary()
    seen: dict[tuple[str, str], int] = {}
    with file.open(encoding="utf-8-sig", newline="") as stream, _progress(json_output) as bar:
        task = bar.add_task("import", total=total)
        try:
            for batch in batched(read_rows(stream), BATCH_SIZE):
                parsed = parse_rows(batch, service.validate, seen)
                summary.add(service.enroll(parsed.valid, dry_run=dry_run), parsed)
                bar.update(task, completed=batch[-1].line - 1)
        except EnrollmentError as exc:  # the header: nothing was imported
            for problem in exc.problems:
                echo_line(f"error: line {exc.row}: {problem.field}: {problem.message}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    _report(summary, dry_run, json_output)
    if summary.rejected:
        raise typer.Exit(1)


def _report(summary: ImportSummary, dry_run: bool, json_output: bool) -> None:
    if json_output:
        print_json(
            {
                "dry_run": dry_run,
                **summary.counts(),
                "problems": [
                    {"line": p.line, "field": p.field, "message": p.message}
                    for p in summary.problems
                ],
                "warnings": [{"line": w.line, "message": w.message} for w in summary.warnings],
            }
        )
        return
    for warning in summary.warnings[:SHOWN_PROBLEMS]:
        echo_line(f"warning: {warning}", err=True)
    for problem in summary.problems[:SHOWN_PROBLEMS]:
        echo_line(f"rejected: {problem}", err=True)
    if len(summary.problems) > SHOWN_PROBLEMS:
        hidden = len(summary.problems) - SHOWN_PROBLEMS
        echo_line(f"... and {hidden} more problem(s); --json lists them all", err=True)
    prefix = "dry run, nothing stored: would be " if dry_run else ""
    echo_line(prefix + ", ".join(f"{name} {n}" for name, n in summary.counts().items()))
