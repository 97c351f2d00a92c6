"""How the CLI prints: rich tables for people, JSON for scripts, times in two zones."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
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


@dataclass(frozen=True)
class Column:
    """A column of a table that fits the terminal.

    `keep`: how long the column stays as the terminal narrows (the lowest goes first; KEEP
    never goes). `wrap_at`: the narrowest the column's text may be wrapped to; None keeps each
    cell on one line (dates, ids, counts).
    """

    header: str
    keep: int = 5
    wrap_at: int | None = None


KEEP = 10


def _natural_width(lines: Iterable[str]) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in lines), default=0)


def fitted_table(
    title: str | None, columns: Sequence[Column], rows: Iterable[Sequence[Any]], width: int
) -> Table:
    """A table no wider than `width`: columns are left out, lowest `keep` first, until it fits;
    the caption names them (and --json has every field)."""
    from rich.table import Table

    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    needed = []
    for index, column in enumerate(columns):
        natural = _natural_width(
            [column.header, *(line for row in cells for line in row[index].splitlines())]
        )
        fitted = natural if column.wrap_at is None else min(natural, column.wrap_at)
        needed.append(fitted + 3)  # a space either side and a border
    shown = list(range(len(columns)))
    while 1 + sum(needed[i] for i in shown) > width:
        droppable = [i for i in shown if columns[i].keep < KEEP]
        if not droppable:
            break
        shown.remove(min(droppable, key=lambda i: (columns[i].keep, -i)))
    hidden = [column.header for i, column in enumerate(columns) if i not in shown]
    caption = f"hidden at this width: {', '.join(hidden)} (see --json)" if hidden else None
    grid = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i in shown:
        column = columns[i]
        grid.add_column(column.header, no_wrap=column.wrap_at is None, overflow="fold")
    for row in cells:
        grid.add_row(*(row[i] for i in shown))
    return grid


def counts_line(counts: Mapping[str, int]) -> str:
    """Non-zero counts in insertion order: sent 3, skipped 1."""
    return ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "nothing"
