"""Reading form fields with the field types every entry point uses (reminders.inputs)."""

from __future__ import annotations

from datetime import date, time
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from reminders.errors import InputProblem
from reminders.inputs import LocalTime, ProcedureDate, explain

T = TypeVar("T")
_DATE: TypeAdapter[date] = TypeAdapter(ProcedureDate)
_TIME: TypeAdapter[time] = TypeAdapter(LocalTime)


def text(form: Any, name: str, limit: int | None = None) -> str:
    """A text field, stripped ("" when absent or not text). Whole unless a `limit` is given:
    what staff type is checked, and refused naming the field, by the service it goes to
    (the body limit bounds a form); a limit only bounds a value the console looks up itself."""
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def _parsed(
    adapter: TypeAdapter[T], value: str, name: str, problems: list[InputProblem]
) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        problems.append(InputProblem(name, explain(str(error["type"]), str(error["msg"]))))
        return None


def procedure_date(form: Any, name: str, problems: list[InputProblem]) -> date | None:
    """A required procedure date, or a problem naming the field."""
    value = text(form, name, 64)
    if not value:
        problems.append(InputProblem(name, "required"))
        return None
    return _parsed(_DATE, value, name, problems)


def local_time(form: Any, name: str, problems: list[InputProblem]) -> time | None:
    """An optional local time (blank: none), or a problem naming the field."""
    value = text(form, name, 64)
    return _parsed(_TIME, value, name, problems) if value else None
