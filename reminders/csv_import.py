"""Patients from a CSV file, as a spreadsheet saves it: one service for the CLI's `import` and
the console's upload page.

`CsvImport(enrollment).run(data, dry_run=True)` lists every bad row by its line and counts what
an import would change; `run(data)` imports the good rows. Columns are the enrollment fields;
an `attr_<name>` column is the attribute <name> (e.g. attr_takes_blood_thinners=yes). Line
numbers are the file's, the header being line 1.

Spreadsheets' ways are read as they come: `,`, `;` (Excel in many locales) or tab separators, a
UTF-8 byte-order mark, and Windows-1252 when the file is not UTF-8 (said in the report's
notes). A database error on a batch never takes its good rows with it: the batch is tried again
row by row and the refused row is named, without its values.

`data` is the file's bytes or a seekable binary file. Either way it is streamed: one decoding
pass checks the encoding and counts lines (a bad byte anywhere stops the file before anything
is stored), then rows are parsed and enrolled a batch at a time, so memory stays flat with the
file's length.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from reminders.enrollment import EnrollmentService, ValidEnrollment
from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import EnrollmentError, InputProblem
from reminders.gc_pause import fewer_collections
from reminders.overlap import overlapped
from reminders.store.records import EnrollmentOutcome

log = logging.getLogger(__name__)

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
SEPARATORS = {",": "','", ";": "';'", "\t": "tab"}
CELL_LIMIT = 1000  # characters; no field is near it (names 128, emails 320)
BATCH_SIZE = 1000

Validate = Callable[[EnrollmentInput, int], ValidEnrollment]
Progress = Callable[[int, int], None]
"""Called with (lines done, lines in the file) after each batch."""


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


@dataclass(frozen=True)
class CsvText:
    """How a file is read: its text encoding and separator, and how many lines it has."""

    encoding: str
    separator: str
    lines: int
    """Lines in the file, for progress (a last line without its newline counts)."""

    def notes(self) -> list[str]:
        """What staff should know about how the file was read."""
        notes = []
        if self.encoding == "windows-1252":
            notes.append("the file is not UTF-8: it was read as Windows-1252 (Excel's CSV)")
        if self.separator != ",":
            notes.append(f"columns separated by {SEPARATORS[self.separator]}")
        return notes


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


# -- reading --------------------------------------------------------------------------------


def file_error(message: str) -> EnrollmentError:
    """A problem with the file as a whole (nothing was imported)."""
    return EnrollmentError([InputProblem("file", message)], HEADER_LINE)


CHUNK = 1 << 20  # bytes decoded at a time: the file is streamed, never held whole
CODECS = {"utf-8": "utf-8", "utf-16": "utf-16", "windows-1252": "cp1252"}


@dataclass(frozen=True)
class _Scan:
    """What one pass of decoding found: lines, whether any text, and the size in bytes."""

    lines: int
    has_text: bool
    size: int


def _scan(stream: BinaryIO, start: int, codec: str) -> _Scan:
    """Decode the file from byte `start`, a chunk at a time, keeping nothing but counts.

    A UnicodeDecodeError's `start` is made the offset from byte `start` (exact for the
    single-byte Windows-1252, whose error is the one reported by position)."""
    stream.seek(start)
    decoder = codecs.getincrementaldecoder(codec)()
    lines, has_text, size, last = 0, False, 0, "\n"
    while True:
        chunk = stream.read(CHUNK)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(
                exc.encoding, exc.object, size + exc.start, size + exc.end, exc.reason
            ) from None
        size += len(chunk)
        if text:
            lines += text.count("\n")
            has_text = has_text or bool(text.strip())
            last = text[-1]
        if not chunk:
            return _Scan(lines + (last != "\n"), has_text, size)


def decode(stream: BinaryIO) -> tuple[str, int, _Scan]:
    """The file's encoding, the byte offset its text starts at, and what a scan found: UTF-8
    (a byte-order mark is skipped), UTF-16 with a byte-order mark, or Windows-1252 when the
    bytes are not UTF-8 but read cleanly as it. The whole file is checked before any row is
    read, so a bad byte near the end stops the import before anything is stored."""
    stream.seek(0)
    head = stream.read(len(codecs.BOM_UTF8))
    start = 0
    if head.startswith(codecs.BOM_UTF8):
        start = len(codecs.BOM_UTF8)
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return "utf-16", 0, _scan(stream, 0, "utf-16")
        except UnicodeDecodeError:
            raise file_error("not readable as UTF-16 text; save it as CSV UTF-8") from None
    try:
        return "utf-8", start, _scan(stream, start, "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return "windows-1252", start, _scan(stream, start, "cp1252")
    except UnicodeDecodeError as exc:
        raise file_error(
            f"not UTF-8 text (byte {exc.start + 1} cannot be read); save it as CSV UTF-8"
        ) from None


def _header_cells(text: str, separator: str) -> list[str]:
    first = next(csv.reader(text.splitlines()[:1], delimiter=separator), [])
    return [cell.strip() for cell in first]


def _known(name: str) -> bool:
    return name in KNOWN_COLUMNS or (name.startswith(ATTR_PREFIX) and len(name) > len(ATTR_PREFIX))


def detect_separator(first_line: str) -> str:
    """The separator whose header names the most known columns; when none names any, the
    one the first line holds most of (`,` on a tie)."""
    first_line = first_line.splitlines()[0] if first_line.strip() else ""
    return max(
        SEPARATORS,
        key=lambda sep: (
            sum(map(_known, _header_cells(first_line, sep))),
            first_line.count(sep),
            sep == ",",
        ),
    )


class CsvFile:
    """A CSV file opened for streaming: checked and measured in one decoding pass, then read
    row by row, so memory stays flat however long the file is."""

    def __init__(self, data: bytes | BinaryIO) -> None:
        self.stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        encoding, self.start, scan = decode(self.stream)
        if not scan.has_text:
            raise file_error("the file is empty")
        self.codec = CODECS[encoding]
        self.size = scan.size
        with self._text() as text:
            separator = detect_separator(text.readline())
        self.csv_text = CsvText(encoding, separator, scan.lines)

    @contextmanager
    def _text(self) -> Iterator[io.TextIOWrapper]:
        """The file's text from its start; the caller's stream is left open."""
        self.stream.seek(self.start)
        wrapper = io.TextIOWrapper(self.stream, encoding=self.codec, newline="")
        try:
            yield wrapper
        finally:
            wrapper.detach()

    def rows(self) -> Iterator[CsvRow]:
        """The data rows, read as they come (see `read_rows`)."""
        # The csv module's own limit (131,072) would stop the whole file at a long cell; no
        # cell is longer than the file, so let it read any cell and refuse long ones by row.
        csv.field_size_limit(max(csv.field_size_limit(), self.size + 1))
        with self._text() as text:
            yield from _rows(text, self.csv_text.separator)


def read_rows(source: str) -> Iterator[CsvRow]:
    """Data rows of a comma-separated text with their starting line; blank lines are skipped.

    A row with more cells than the header, or a cell over CELL_LIMIT characters, yields a
    `row` problem cell, reported by `parse_rows`.
    """
    csv.field_size_limit(max(csv.field_size_limit(), len(source) + 1))
    return _rows(io.StringIO(source, newline=""), ",")


def _rows(lines: Iterable[str], separator: str) -> Iterator[CsvRow]:
    reader = csv.reader(lines, delimiter=separator)
    header = next(reader, None)
    if header is None:
        raise file_error("the file is empty")
    try:
        columns = check_header(header)
    except EnrollmentError as exc:
        if separator == ",":
            raise
        raise _not_this_header(separator, exc) from None
    last_line = reader.line_num
    for cells in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        values = dict(zip(columns, cells, strict=False))
        if len(cells) > len(columns):
            values["row"] = f"{len(cells)} cells but the header has {len(columns)}"
        long = [name for name, cell in values.items() if len(cell) > CELL_LIMIT]
        if long:
            values = {"row": f"{long[0]}: a cell over {CELL_LIMIT:,} characters"}
        yield CsvRow(line, values)


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
    for number, name in enumerate(columns, start=1):
        if not name:
            problems.append(InputProblem(f"column {number}", "has no name in the header"))
        elif not _known(name):
            problems.append(InputProblem(name, "unknown column; attributes go in attr_<name>"))
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            problems.append(InputProblem(name, "column appears twice"))
        seen.add(name)
    if problems:
        raise EnrollmentError(problems, HEADER_LINE)
    return columns


def _not_this_header(separator: str, error: EnrollmentError) -> EnrollmentError:
    """One message for a header read with another separator than `,`: likely the wrong one."""
    missing = [p.field for p in error.problems if p.message == "required column is missing"]
    unknown = [p.field for p in error.problems if p.message.startswith("unknown column")]
    details = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(unknown)}" if unknown else "",
        )
        if part
    )
    return file_error(
        f"this file looks separated by {SEPARATORS[separator]}, but its header does not name "
        f"the columns ({details}); check the first line"
    )


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


# -- the service ----------------------------------------------------------------------------


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
