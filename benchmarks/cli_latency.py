"""CLI start-up latency: wall time of `reminders --help`, every command's help, `plans check`.

Each command runs as its own process, as a user types it, several times; the table shows the
median (the figure compared with the target), the fastest and the slowest run. The machine may
be shared, so the load average is printed beside the figures. `--check` exits 1 when a median
misses its target (0.3 s for help, 1 s for `plans check`).

    .venv/bin/python -m benchmarks.cli_latency --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

ROOT = Path(__file__).resolve().parents[1]
HELP_TARGET = 0.3
CHECK_TARGET = 1.0


@dataclass(frozen=True)
class Timing:
    """Wall times of one command over several runs."""

    command: tuple[str, ...]
    target: float
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """The figure compared with the target."""
        return statistics.median(self.seconds)

    @property
    def met(self) -> bool:
        """Whether the median is under the target."""
        return self.median < self.target


def help_commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """`--help` of a click group itself, then of every command and subgroup below it."""
    yield (*prefix, "--help")
    context = typer.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if hasattr(command, "list_commands"):
            yield from help_commands(command, (*prefix, name))
        else:
            yield (*prefix, name, "--help")


def all_commands() -> list[tuple[tuple[str, ...], float]]:
    """Each help command with the help target, then `plans check` with its own."""
    from reminders.cli.main import app

    group = typer.main.get_command(app)
    commands = [(command, HELP_TARGET) for command in help_commands(group)]
    return [*commands, (("plans", "check"), CHECK_TARGET)]


def time_command(
    executable: Path, command: tuple[str, ...], target: float, runs: int, env: dict[str, str]
) -> Timing:
    """Run one command `runs` times (after one unmeasured warm-up run); fail on a non-zero exit."""
    seconds: list[float] = []
    for run in range(runs + 1):
        started = time.perf_counter()
        result = subprocess.run(
            [str(executable), *command], cwd=ROOT, env=env, capture_output=True, check=False
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(
                f"reminders {' '.join(command)} exited {result.returncode}:\n"
                + result.stderr.decode(errors="replace")
            )
        if run:
            seconds.append(elapsed)
    return Timing(command, target, tuple(seconds))


def markdown_table(timings: Sequence[Timing]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| command | median | fastest | slowest | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for timing in timings:
        lines.append(
            f"| `reminders {' '.join(timing.command)}` | {timing.median:.3f} s "
            f"| {min(timing.seconds):.3f} s | {max(timing.seconds):.3f} s "
            f"| < {timing.target:g} s | {'yes' if timing.met else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every command; print a Markdown table; with --check, exit 1 on a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--executable",
        type=Path,
        default=Path(sys.executable).with_name("reminders"),
        help="the reminders command to time (default: the one beside this Python)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        # A scratch database and outbox: nothing here may touch the user's var/.
        env = {
            **os.environ,
            "REMINDERS_DATABASE_URL": f"sqlite:///{scratch}/latency.sqlite3",
            "COLUMNS": "80",
        }
        # `plans check` also reads which plan versions enrolled patients follow: give it a
        # database to read, as on any machine where the service has run.
        subprocess.run(
            [str(args.executable), "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
        )
        load_before = os.getloadavg()[0]
        timings = [
            time_command(args.executable, command, target, args.runs, env)
            for command, target in all_commands()
        ]
        load_after = os.getloadavg()[0]
    print(f"{args.runs} runs per command on {os.cpu_count()} cores; ", end="")
    print(f"1-minute load average {load_before:.2f} before, {load_after:.2f} after")
    print(markdown_table(timings))
    missed = [t for t in timings if not t.met]
    print(f"{len(timings) - len(missed)} of {len(timings)} commands under their target")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
