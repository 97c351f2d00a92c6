"""Turn every ReminderError, and a database that does not answer, into a short message and an
exit code, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import typer

from reminders.cli.options import QuickGroup
from reminders.cli.output import echo_line
from reminders.errors import EnrollmentError, PlanError, ReminderError, SettingsError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2  # the same code click uses for a bad option
EXIT_AFTER_PASS_FAILED = 3  # send-due: the sends are committed, what runs after them failed


def error_lines(error: ReminderError) -> list[str]:
    """One line per problem the error carries."""
    if isinstance(error, PlanError):
        return [str(problem) for problem in error.problems]
    if isinstance(error, EnrollmentError):
        where = f"line {error.row}: " if error.row is not None else ""
        return [f"{where}{p.field}: {p.message}" for p in error.problems]
    if isinstance(error, SettingsError):
        return [f"{p.field}: {p.message}" for p in error.problems]
    return [str(error)]


def exit_code(error: ReminderError) -> int:
    """Bad input exits 2, like a bad option; anything else that went wrong exits 1."""
    return EXIT_BAD_INPUT if isinstance(error, EnrollmentError | SettingsError) else EXIT_FAILED


def database_failure(error: Exception) -> str | None:
    """The database did not answer (down, refusing connections, locked, timed out): one line
    for the operator, the driver's first line without the statement's SQL; None for any other
    error (a bug keeps its traceback)."""
    # Not loaded (help, a command without the database): the error cannot be one of its.
    exc = sys.modules.get("sqlalchemy.exc")
    if exc is None or not isinstance(error, exc.OperationalError):
        return None
    said = str(error.orig if error.orig is not None else error).strip().splitlines()
    return f"the database did not answer: {said[0] if said else type(error).__name__}"


def report(error: ReminderError) -> None:
    """Print an error's problems on standard error."""
    for line in error_lines(error):
        echo_line(f"error: {line}", err=True)


AS_NAME_KEY = "reminders.as_name"


class ReminderGroup(QuickGroup):
    """The top-level command group; catches ReminderError from any command below it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Take `--as NAME` (before the command) into ctx.meta.

        Read here rather than as a typed option: typer coerces every non-flag option of the
        root callback through pydantic, which would load it on every start, help included.
        """
        rest = list(args)
        for index, arg in enumerate(rest):
            if not arg.startswith("-"):
                break
            if arg == "--as" and index + 1 < len(rest):
                ctx.meta[AS_NAME_KEY] = rest[index + 1]
                del rest[index : index + 2]
                break
            if arg.startswith("--as="):
                ctx.meta[AS_NAME_KEY] = arg.removeprefix("--as=")
                del rest[index]
                break
        return list(super().parse_args(ctx, rest))

    def invoke(self, ctx: Any) -> Any:  # typer's Context class differs across typer versions
        """Run the command, reporting a ReminderError (or a database that did not answer) as
        text with a non-zero exit."""
        try:
            return super().invoke(ctx)
        except ReminderError as error:
            report(error)
            raise typer.Exit(exit_code(error)) from None
        except Exception as error:
            line = database_failure(error)
            if line is None:
                raise
            echo_line(f"error: {line}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
