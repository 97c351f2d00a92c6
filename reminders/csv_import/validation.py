"""CSV rows checked by the enrollment rules, a batch at a time: the valid enrollments, and every
problem of the rows that are not, by line and column."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reminders.csv_import.reading import ATTR_PREFIX, CsvRow
from reminders.enrollment import ValidEnrollment
from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import EnrollmentError

Validate = Callable[[EnrollmentInput, int], ValidEnrollment]
"""The enrollment service's check of one input, given the line it came from."""


@dataclass(frozen=True)
class RowProblem:
    """One bad field of one row."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ParsedRows:
    """Rows that passed validation, and every problem of the rows that did not."""

    valid: list[ValidEnrollment] = field(default_factory=list)
    valid_lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)


def row_data(values: dict[str, str]) -> dict[str, Any]:
    """A row's cells by field: blanks are left out, attr_ columns are attributes."""
    data: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for column, raw in values.items():
        value = raw.strip()
        if not value:
            continue
        if column.startswith(ATTR_PREFIX):
            attributes[column.removeprefix(ATTR_PREFIX)] = value
        else:
            data[column] = value
    data["attributes"] = attributes
    return data


def column_of(field: str) -> str:
    """The CSV column an input field comes from (`attributes.x` is the column `attr_x`)."""
    name = field.removeprefix("attributes.")
    return ATTR_PREFIX + name if name != field else field


class SeenRows:
    """The line each (external id, plan) was first accepted on, across a file's batches.

    Kept small, since it is the one thing an import holds per row: a 64-bit digest of the pair
    and the line (about 100 bytes a row, against 250 for the two strings in a tuple). Two pairs
    share a digest with odds near n²/2⁶⁵ (1 in 3.7 million for a million rows).
    """

    def __init__(self) -> None:
        self._lines: dict[int, int] = {}

    @staticmethod
    def _digest(external_id: str, plan: str) -> int:
        pair = f"{external_id}\x00{plan}".encode()
        return int.from_bytes(hashlib.blake2b(pair, digest_size=8).digest())

    def first_line(self, external_id: str, plan: str) -> int | None:
        """The line the pair was accepted on, or None."""
        return self._lines.get(self._digest(external_id, plan))

    def add(self, external_id: str, plan: str, line: int) -> None:
        """Remember the pair's line (the first one stays)."""
        self._lines.setdefault(self._digest(external_id, plan), line)

    def __len__(self) -> int:
        return len(self._lines)


def parse_rows(rows: Iterable[CsvRow], validate: Validate, seen: SeenRows) -> ParsedRows:
    """Validate rows; a patient listed twice for the same plan is refused on its later line.

    `seen` holds the pairs already accepted, across batches.
    """
    parsed = ParsedRows()
    for row in rows:
        problems: list[RowProblem] = []
        if "row" in row.values:
            problems.append(RowProblem(row.line, "row", row.values.pop("row")))
        data = row_data(row.values)
        key = (str(data.get("external_id", "")), str(data.get("plan", "")))
        first = seen.first_line(*key) if not problems else None
        if first is not None:
            problems.append(
                RowProblem(row.line, "external_id", f"'{key[0]}' is already on line {first}")
            )
        if not problems:
            try:
                parsed.valid.append(validate(read_input(data, row.line), row.line))
                parsed.valid_lines.append(row.line)
            except EnrollmentError as exc:
                problems.extend(
                    RowProblem(row.line, column_of(p.field), p.message) for p in exc.problems
                )
        if problems:
            parsed.problems.extend(problems)
            parsed.rejected_lines.append(row.line)
        else:
            seen.add(*key, row.line)
    return parsed
