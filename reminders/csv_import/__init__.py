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

Its parts, each with one job: `reading` (bytes to rows with their lines), `validation` (rows
to valid enrollments and problems by line) and `service` (`CsvImport`: batches, the database,
the summary).
"""

from reminders.csv_import.reading import (
    CHUNK,
    CsvFile,
    CsvRow,
    CsvText,
    check_header,
    detect_separator,
    read_rows,
)
from reminders.csv_import.service import (
    BATCH_SIZE,
    CsvImport,
    ImportSummary,
    Progress,
    RowWarning,
    batched,
)
from reminders.csv_import.validation import (
    ParsedRows,
    RowProblem,
    SeenRows,
    Validate,
    column_of,
    parse_rows,
    row_data,
)

__all__ = [
    "BATCH_SIZE",
    "CHUNK",
    "CsvFile",
    "CsvImport",
    "CsvRow",
    "CsvText",
    "ImportSummary",
    "ParsedRows",
    "Progress",
    "RowProblem",
    "RowWarning",
    "SeenRows",
    "Validate",
    "batched",
    "check_header",
    "column_of",
    "detect_separator",
    "parse_rows",
    "read_rows",
    "row_data",
]
