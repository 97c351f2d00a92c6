"""How the CLI prints: rich tables for people, JSON for scripts, times in two zones."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def stdout() -> Console:
    """A console on the current standard output (tests swap it, so never cache one)."""
    from rich.console import Console

    return Console(highlight=False)


def stderr() -> Console:
    """A console on standard error, for problems and progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def echo_line(text: str, *, err: bool = False) -> None:
    """Print one plain line, never wrapped, so `file:line:` stays greppable."""
    typer.echo(text, err=err)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    """Write data as indented JSON on standard output."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def local_time(instant: datetime | None, zone: str) -> str:
    """An instant on a patient's wall clock, with the zone's abbreviation: 2026-03-02 09:00 EST."""
    if instant is None:
        return ""
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"


def utc_time(instant: datetime | None) -> str:
    """The same instant in UTC: 2026-03-02 14:00Z."""
    if instant is None:
        return ""
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M}Z"


def local_iso(instant: datetime | None, zone: str) -> str | None:
    """ISO 8601 with the patient's UTC offset, for JSON."""
    return None if instant is None else instant.astimezone(ZoneInfo(zone)).isoformat()


def utc_iso(instant: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, for JSON."""
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table; None cells print empty."""
    from rich.table import Table

    grid = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def counts_line(counts: Mapping[str, int]) -> str:
    """Non-zero counts in insertion order: sent 3, skipped 1."""
    return ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "nothing"
