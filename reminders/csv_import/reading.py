"""Reading a CSV file as a spreadsheet saves it: its text encoding, its separator, its header,
then its data rows, each with the file line it starts on (the header being line 1).

`,`, `;` (Excel in many locales) or tab separators, a UTF-8 byte-order mark, and Windows-1252
when the file is not UTF-8. The file is streamed: one decoding pass checks the encoding and
counts lines (a bad byte anywhere stops the file before any row is read), then rows are read
as they come, so memory stays flat with the file's length.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from reminders.errors import EnrollmentError, InputProblem

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


@dataclass(frozen=True)
class CsvRow:
    """One data row and the file line it starts on."""

    line: int
    values: dict[str, str]


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
