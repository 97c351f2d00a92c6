"""The CSV import service: a file's rows parsed and enrolled a batch at a time, with a summary
of what was done (or, in a dry run, would be) by row."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from reminders.csv_import.reading import CsvFile, CsvRow
from reminders.csv_import.validation import ParsedRows, RowProblem, SeenRows, parse_rows
from reminders.enrollment import EnrollmentService
from reminders.gc_pause import fewer_collections
from reminders.overlap import overlapped
from reminders.store.records import EnrollmentOutcome

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
Progress = Callable[[int, int], None]
"""Called with (lines done, lines in the file) after each batch."""


@dataclass(frozen=True)
class RowWarning:
    """Something staff should know about a row that was imported (kept on the enrollment)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do), by patient row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def add(self, outcomes: Sequence[EnrollmentOutcome], parsed: ParsedRows) -> None:
        """Count one batch."""
        for line, outcome in zip(parsed.valid_lines, outcomes, strict=True):
            self.warnings.extend(RowWarning(line, warning) for warning in outcome.warnings)
            if outcome.created:
                self.created += 1
            elif any(change.changed for change in outcome.changes):
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


def batched(rows: Iterable[CsvRow], size: int = BATCH_SIZE) -> Iterator[list[CsvRow]]:
    """Rows in lists of `size`."""
    batch: list[CsvRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class CsvImport:
    """Import patients from a CSV file through the enrollment service (same rules as the CLI's
    `enroll` and the API)."""

    def __init__(self, enrollment: EnrollmentService, batch_size: int = BATCH_SIZE) -> None:
        self.enrollment = enrollment
        self.batch_size = batch_size

    def run(
        self, data: bytes | BinaryIO, *, dry_run: bool = False, progress: Progress | None = None
    ) -> ImportSummary:
        """Import the good rows (with dry_run: store nothing) and report every bad one by line.

        Raises EnrollmentError (line 1) when the file as a whole cannot be read: not text, no
        known separator, or a header with missing or unknown columns; nothing is stored then.
        """
        source = CsvFile(data)
        total = source.csv_text.lines
        summary = ImportSummary(notes=source.csv_text.notes(), dry_run=dry_run)
        seen = SeenRows()

        def parsed_batches() -> Iterator[tuple[int, ParsedRows]]:
            for batch in batched(source.rows(), self.batch_size):
                yield batch[-1].line, parse_rows(batch, self.enrollment.validate, seen)

        def enroll(item: tuple[int, ParsedRows]) -> list[EnrollmentOutcome]:
            return self.enrollment.enroll(item[1].valid, dry_run=dry_run)

        def patients(item: tuple[int, ParsedRows]) -> set[str]:
            return {entry.record.external_id for entry in item[1].valid}

        # Two batches at once where the database takes concurrent writers (PostgreSQL): one
        # is parsed, scheduled and formatted while the database stores the other.
        in_flight = 2 if self.enrollment.concurrent_writers else 1
        with fewer_collections():
            for (last_line, parsed), enrolled in overlapped(
                parsed_batches(), enroll, patients, in_flight=in_flight
            ):
                summary.add(self._outcomes(parsed, enrolled, dry_run), parsed)
                if progress is not None:
                    progress(last_line, total)
        summary.problems.sort(key=lambda problem: problem.line)
        return summary

    def _outcomes(
        self, parsed: ParsedRows, enrolled: Future[list[EnrollmentOutcome]], dry_run: bool
    ) -> list[EnrollmentOutcome]:
        """A batch's outcomes; on a database error, the batch again row by row, so that only
        the refused row fails."""
        try:
            return enrolled.result()
        except SQLAlchemyError as exc:
            log.warning(
                "CSV batch of %d rows refused by the database (%s); retrying row by row",
                len(parsed.valid),
                type(exc).__name__,
            )
        outcomes: list[EnrollmentOutcome] = []
        entries, lines = parsed.valid, parsed.valid_lines
        parsed.valid, parsed.valid_lines = [], []
        for entry, line in zip(entries, lines, strict=True):
            try:
                outcomes.extend(self.enrollment.enroll([entry], dry_run=dry_run))
            except SQLAlchemyError as exc:
                log.warning("CSV line %d refused by the database (%s)", line, type(exc).__name__)
                parsed.problems.append(
                    RowProblem(
                        line,
                        "row",
                        f"the database refused this row ({type(exc).__name__}); "
                        "nothing of it was stored",
                    )
                )
                parsed.rejected_lines.append(line)
                continue
            parsed.valid.append(entry)
            parsed.valid_lines.append(line)
        return outcomes
