"""Patients from a CSV file: rows in, enrollment input out, every bad row reported by its line.

Columns are the enrollment fields; any `attr_<name>` column becomes the attribute <name>
(e.g. attr_takes_blood_thinners=yes). Line numbers are the file's, the header being line 1.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from reminders.enrollment import ValidEnrollment
from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import EnrollmentError, InputProblem
from reminders.store.records import EnrollmentOutcome

ATTR_PREFIX = "attr_"
REQUIRED_COLUMNS = ("external_id", "first_name", "timezone", "plan", "procedure_date")
OPTIONAL_COLUMNS = (
    "phone",
    "email",
    "language",
    "preferred_channel",
    "sms_consent",
    "procedure_time",
)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
HEADER_LINE = 1

Validate = Callable[[EnrollmentInput, int], ValidEnrollment]


@dataclass(frozen=True)
class CsvRow:
    """One data row and the file line it starts on."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class RowProblem:
    """One bad field of one row."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class RowWarning:
    """Something staff should know about a row that was imported (kept on the enrollment)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedRows:
    """Rows that passed validation, and every problem of the rows that did not."""

    valid: list[ValidEnrollment] = field(default_factory=list)
    valid_lines: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do), by patient row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)

    def add(self, outcomes: Sequence[EnrollmentOutcome], parsed: ParsedRows) -> None:
        """Count one batch."""
        for line, outcome in zip(parsed.valid_lines, outcomes, strict=False):
            self.warnings.extend(RowWarning(line, warning) for warning in outcome.warnings)
        for outcome in outcomes:
            if outcome.created:
                self.created += 1
            elif any(change.action != "keep" for change in outcome.changes):
                self.updated += 1
            else:
                self.unchanged += 1
        self.rejected += len(parsed.rejected_lines)
        self.problems.extend(parsed.problems)

    def counts(self) -> dict[str, int]:
        """The four counts by name."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def check_header(header: Sequence[str]) -> list[str]:
    """The header's column names; EnrollmentError (line 1) for missing or unknown columns."""
    columns = [name.strip() for name in header]
    problems = [
        InputProblem(name, "required column is missing")
        for name in REQUIRED_COLUMNS
        if name not in columns
    ]
    if "phone" not in columns and "email" not in columns:
        problems.append(InputProblem("phone", "give a phone or an email column (or both)"))
    for name in columns:
        if name not in KNOWN_COLUMNS and not (name.startswith(ATTR_PREFIX) and len(name) > 5):
            problems.append(
                InputProblem(name or "(blank)", "unknown column; attributes go in attr_<name>")
            )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            problems.append(InputProblem(name, "column appears twice"))
        seen.add(name)
    if problems:
        raise EnrollmentError(problems, HEADER_LINE)
    return columns


def read_rows(stream: TextIO) -> Iterator[CsvRow]:
    """Data rows with their starting line; blank lines are skipped.

    A row with more cells than the header yields an `(extra)` cell, reported by `parse_rows`.
    """
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise EnrollmentError([InputProblem("(file)", "the file is empty")], HEADER_LINE)
    columns = check_header(header)
    last_line = reader.line_num
    for cells in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        values = dict(zip(columns, cells, strict=False))
        if len(cells) > len(columns):
            values["(extra)"] = f"{len(cells)} cells but the header has {len(columns)}"
        yield CsvRow(line, values)


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


def parse_rows(
    rows: Iterable[CsvRow],
    validate: Validate,
    seen: dict[tuple[str, str], int],
) -> ParsedRows:
    """Validate rows; a patient listed twice for the same plan is refused on its later line.

    `seen` maps (external id, plan) to the line it was first accepted on, across batches.
    """
    parsed = ParsedRows()
    for row in rows:
        problems: list[RowProblem] = []
        if "(extra)" in row.values:
            problems.append(RowProblem(row.line, "(row)", row.values.pop("(extra)")))
        data = row_data(row.values)
        key = (str(data.get("external_id", "")), str(data.get("plan", "")))
        if key in seen:
            problems.append(
                RowProblem(row.line, "external_id", f"'{key[0]}' is already on line {seen[key]}")
            )
        if not problems:
            try:
                parsed.valid.append(validate(read_input(data, row.line), row.line))
                parsed.valid_lines.append(row.line)
            except EnrollmentError as exc:
                problems.extend(RowProblem(row.line, p.field, p.message) for p in exc.problems)
        if problems:
            parsed.problems.extend(problems)
            parsed.rejected_lines.append(row.line)
        else:
            seen[key] = row.line
    return parsed


def batched(rows: Iterable[CsvRow], size: int = 1000) -> Iterator[list[CsvRow]]:
    """Rows in lists of `size`."""
    batch: list[CsvRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
