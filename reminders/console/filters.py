"""The list filters of the Messages, Outcomes and Audit pages, read from the query string and
checked in the words the CLI and the API use (`since`: 24h, 7d or an ISO date/time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from reminders.clock import utc_now
from reminders.inputs import since_instant, storable

MAX_TEXT = 128


@dataclass(frozen=True)
class Filters:
    """What a list page was asked for, and what in it could not be used."""

    values: dict[str, str]
    problems: list[str]
    since: datetime | None

    def get(self, name: str) -> str | None:
        """A filter's value, None when blank."""
        return self.values.get(name) or None


def unstorable(values: dict[str, str]) -> list[str]:
    """Blank each value no database can store (it matches nothing), naming it as the API does."""
    problems = []
    for name, value in values.items():
        try:
            storable(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            values[name] = ""
    return problems


def read_filters(
    request: Request, names: tuple[str, ...], choices: dict[str, list[str]]
) -> Filters:
    """The named filters; a value outside its `choices` or a bad `since` is dropped and named."""
    values = {name: request.query_params.get(name, "").strip()[:MAX_TEXT] for name in names}
    problems = unstorable(values)
    for name, allowed in choices.items():
        if values.get(name) and values[name] not in allowed:
            problems.append(f"{name}: expected one of {', '.join(allowed)}")
            values[name] = ""
    since = None
    if values.get("since"):
        try:
            since = since_instant(values["since"], utc_now())
        except ValueError as exc:
            problems.append(f"since: {exc}")
            values["since"] = ""
    return Filters(values, problems, since)
