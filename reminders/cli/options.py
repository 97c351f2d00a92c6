"""Parsing of option values the CLI shares: dates, times, key=value attributes, "since"."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from reminders.inputs import since_instant


def parse_date(value: str, option: str = "--procedure-date") -> date:
    """A YYYY-MM-DD date, or a usage error naming the option."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=option) from None


def parse_time(value: str | None, option: str = "--procedure-time") -> time | None:
    """An HH:MM local time (or None), or a usage error naming the option."""
    if value is None or not value.strip():
        return None
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise typer.BadParameter(f"expected HH:MM, got {value!r}", param_hint=option) from None


def parse_zone(value: str, option: str = "--timezone") -> str:
    """An IANA time zone name, or a usage error naming the option."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"unknown IANA time zone {value!r} (e.g. America/Chicago)", param_hint=option
        ) from None
    return value


def parse_attrs(values: list[str] | None) -> dict[str, str]:
    """`--attr key=value` options as a dict (values stay text, as they do from a CSV)."""
    attributes: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--attr")
        attributes[key.strip()] = value.strip()
    return attributes


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """A duration back from now ("24h", "7d") or an ISO instant (naive means UTC)."""
    if value is None:
        return None
    try:
        return since_instant(value, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
