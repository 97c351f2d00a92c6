"""`reminders import FILE.csv`: enroll many patients at once, reporting every bad row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reminders.cli.options import JsonOption
from reminders.cli.output import echo_line, print_json, stderr
from reminders.cli.state import get_state

if TYPE_CHECKING:
    from rich.progress import Progress

    from reminders.csv_import import ImportSummary

SHOWN_PROBLEMS = 100


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
        bool, typer.Option("--dry-run", help="Check every row and count; store nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Enroll or update patients from a CSV file; exit 1 when any row was rejected.

    Reads `,`, `;` or tab separated files, UTF-8 (with or without a byte-order mark) or
    Windows-1252 as Excel saves them.
    """
    state = get_state(ctx)
    importer = state.app.csv_import(state.actor)
    with _progress(json_output) as bar, file.open("rb") as stream:
        task = bar.add_task("import", total=None)
        summary = importer.run(
            stream,
            dry_run=dry_run,
            progress=lambda done, total: bar.update(task, completed=done - 1, total=total - 1),
        )
    _report(summary, json_output)
    if summary.rejected:
        raise typer.Exit(1)


def _report(summary: ImportSummary, json_output: bool) -> None:
    if json_output:
        print_json(
            {
                "dry_run": summary.dry_run,
                **summary.counts(),
                "problems": [
                    {"line": p.line, "field": p.field, "message": p.message}
                    for p in summary.problems
                ],
                "warnings": [{"line": w.line, "message": w.message} for w in summary.warnings],
                "notes": summary.notes,
            }
        )
        return
    for note in summary.notes:
        echo_line(f"note: {note}", err=True)
    for warning in summary.warnings[:SHOWN_PROBLEMS]:
        echo_line(f"warning: {warning}", err=True)
    for problem in summary.problems[:SHOWN_PROBLEMS]:
        echo_line(f"rejected: {problem}", err=True)
    if len(summary.problems) > SHOWN_PROBLEMS:
        hidden = len(summary.problems) - SHOWN_PROBLEMS
        echo_line(f"... and {hidden} more problem(s); --json lists them all", err=True)
    prefix = "dry run, nothing stored: would be " if summary.dry_run else ""
    echo_line(prefix + ", ".join(f"{name} {n}" for name, n in summary.counts().items()))
