"""Field types and messages shared by every entry point (CLI, CSV, HTTP API, later HL7/FHIR).

Each type refuses what the databases cannot hold (NUL characters, times with a UTC offset,
far dates) and says how to write the value instead, so a value is checked the same way and
explained in the same words wherever staff type it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

from reminders.errors import EnrollmentError, InputProblem
from reminders.plans.durations import parse_duration

EARLIEST_PROCEDURE = date(2000, 1, 1)
LATEST_PROCEDURE = date(2099, 12, 31)
DATE_HINT = "expected YYYY-MM-DD, e.g. 2027-03-09"
TIME_HINT = "expected HH:MM, 24-hour, e.g. 07:30"
LANGUAGE_HINT = "expected a language code such as en, es or pt-BR"
# Zone names that are fixed offsets or abbreviations: valid IANA names, but a patient who lives
# in one of these places changes clocks; refusing them keeps daylight saving right.
ZONE_SUGGESTIONS = {
    "EST": "America/New_York",
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST": "America/Denver (or America/Phoenix, which keeps MST all year)",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    "HST": "Pacific/Honolulu",
    "CET": "Europe/Berlin",
    "MET": "Europe/Berlin",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
}
FIXED_ZONES_ALLOWED = {"UTC", "Etc/UTC"}
# Free text staff type, checked by `staff_text` in the service each way in goes through.
MAX_STAFF_TEXT = 500
"""A cancel reason, an opt-in note."""
MAX_FLAG_NOTE = 2000
"""The note staff leave when they resolve a flag (what was done: a call, a visit)."""
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def storable(value: str) -> str:
    """Refuse text no database can store: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


def staff_text(field: str, value: str, limit: int = MAX_STAFF_TEXT) -> str:
    """Free text staff (or a feed) give an operation, a cancel reason or a note, checked as
    every entry point's text fields are: EnrollmentError naming `field` when no database can
    store it (`storable`) or when it is longer than `limit` (never cut: the end of a note is
    as much staff's words as its start)."""
    try:
        storable(value)
    except ValueError as exc:
        raise EnrollmentError([InputProblem(field, str(exc))]) from None
    if len(value) > limit:
        raise EnrollmentError([InputProblem(field, f"at most {limit} characters")])
    return value


def fitted(value: str, limit: int = MAX_STAFF_TEXT) -> str:
    """Text a feed sends (an appointment's cancel reason), kept to `limit` with "…" at the
    end: no person can shorten it, and the cancel must not be refused for it (the feed's log
    keeps the message as it came)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def not_a_formula(value: str) -> str:
    """Refuse a spreadsheet formula (=, +, -, @ first): it would be texted to the patient as is."""
    if value.startswith(_FORMULA_START):
        raise ValueError(
            f"starts with {value[:1]!r}, which spreadsheets read as a formula; "
            "remove it or check the cell"
        )
    return value


def procedure_date(value: date) -> date:
    """A procedure date in this century (far dates are typing mistakes and overflow arithmetic)."""
    if not EARLIEST_PROCEDURE <= value <= LATEST_PROCEDURE:
        raise ValueError(f"must be between {EARLIEST_PROCEDURE} and {LATEST_PROCEDURE}")
    return value


def _local_time(value: Any) -> Any:
    """ "07:30" or "7:30" (seconds allowed); a time with a UTC offset is refused."""
    if isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
        if match is None:
            if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})", text):
                raise ValueError(f"{TIME_HINT}, in the patient's time zone (no UTC offset)")
            raise ValueError(TIME_HINT)
        hours, minutes, seconds = (int(part or 0) for part in match.groups())
        try:
            return time(hours, minutes, seconds)
        except ValueError:
            raise ValueError(TIME_HINT) from None
    if isinstance(value, time) and value.tzinfo is not None:
        raise ValueError(f"{TIME_HINT}, in the patient's time zone (no UTC offset)")
    return value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(DATE_HINT) from None
    return value


def read_date(text: str) -> date:
    """A procedure date as staff type it (YYYY-MM-DD), or ValueError saying how to write it."""
    return procedure_date(_date(text))


def read_time(text: str) -> time:
    """A local time as staff type it (HH:MM, 24-hour), or ValueError saying how to write it."""
    value: time = _local_time(text)
    return value


def time_zone(value: str) -> str:
    """An IANA Region/City zone; abbreviations and fixed offsets are refused with the right one."""
    problem = _zone_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


@functools.lru_cache(maxsize=1024)
def _zone_problem(value: str) -> str | None:
    """Why a zone name is refused, or None. Remembered: a CSV file names a few zones many
    times, and ZoneInfo reads the zone's file again once more than 8 zones are in use."""
    suggestion = ZONE_SUGGESTIONS.get(value.upper())
    if suggestion:
        return f"{value} has no daylight saving; use {suggestion}"
    folder, _, name = value.partition("/")
    if folder in ("right", "posix") and name:
        # right/: counted with leap seconds (zoneinfo reads it an hour off in winter); posix/:
        # only where the system's tz database is installed. Both copy the plain name's zone.
        return f"{value} is a copy of the tz database's; use {name}"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown IANA time zone {value!r} (e.g. America/Chicago)"
    if value not in FIXED_ZONES_ALLOWED and ("/" not in value or value.startswith("Etc/")):
        return f"{value} is not a Region/City zone; use the patient's, e.g. America/Chicago"
    return None


def language_tag(value: str) -> str:
    """A well-formed language code (en, es, pt-BR), lower-cased; anything else is refused."""
    if not _LANGUAGE.match(value):
        raise ValueError(LANGUAGE_HINT)
    return value.lower()


Text = Annotated[str, AfterValidator(storable)]
PersonName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(storable),
    AfterValidator(not_a_formula),
]
ProcedureDate = Annotated[date, BeforeValidator(_date), AfterValidator(procedure_date)]
LocalTime = Annotated[time, BeforeValidator(_local_time)]
TimeZoneName = Annotated[
    str,
    Field(max_length=64, examples=["America/Chicago"]),
    AfterValidator(storable),
    AfterValidator(time_zone),
]
LanguageTag = Annotated[str, Field(max_length=16), AfterValidator(language_tag)]


def since_instant(value: str, now: datetime) -> datetime:
    """ "24h", "7d" back from now, or an ISO date/time (UTC when it has no offset)."""
    text = value.strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    except OverflowError:
        raise ValueError("too far back; give a duration such as 24h or 7d") from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", text):
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if not 1970 <= instant.year <= 9000:
                raise ValueError("must be between the years 1970 and 9000")
            return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)
    raise ValueError(
        "expected a duration such as 24h or 7d, or a date/time such as 2027-03-09T08:00Z"
    )


def explain(error_type: str, message: str, context: Mapping[str, Any] | None = None) -> str:
    """One pydantic error in the words staff read everywhere (no internal words)."""
    context = context or {}
    if error_type.startswith(("date_", "datetime_")):
        return DATE_HINT
    if error_type.startswith("time_"):
        return TIME_HINT
    if error_type == "missing":
        return "required"
    if error_type == "extra_forbidden":
        return "unknown field"
    if error_type in ("too_long", "string_too_long") and "max_length" in context:
        items = context.get("field_type") in ("Dictionary", "List", "Set", "Tuple")
        return f"at most {context['max_length']} {'entries' if items else 'characters'}"
    if error_type == "string_too_short" and context.get("min_length") == 1:
        return "must not be empty"
    if error_type.startswith("bool_"):
        return "expected yes or no"
    if error_type == "literal_error" and "expected" in context:
        return "expected " + str(context["expected"]).replace("'", "")
    return message.removeprefix("Value error, ")
