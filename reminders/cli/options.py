"""What the CLI's commands share: groups, and parsing of dates, times, key=value, "since"."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

_PLACEHOLDERS = {"str": "TEXT", "int": "N", "int range": "N", "float": "NUMBER", "path": "PATH"}
_TYPE_PLACEHOLDER = re.compile(r" <(?:list\[)?(str|int|int range|float|path)\]?>")


def _option_name(record_name: str) -> str:
    """`--id TEXT`, `--limit N` where typer writes `--id <str>`, `--limit <int range>`."""
    return _TYPE_PLACEHOLDER.sub(lambda match: " " + _PLACEHOLDERS[match.group(1)], record_name)


def _argument_name(param: Any) -> str:
    """`EXT`, `FILE`: an argument's placeholder, where typer writes `{EXT}` and `file <file>`."""
    name = str(param.metavar or param.name).upper()
    return name if param.nargs == 1 else f"{name}..."


def _quick_help(option: Any) -> Any:
    """The help option with a False default instead of None.

    typer coerces a flag's missing value (None) through pydantic, whose import and adapters
    take 0.1-0.5 s; a False default is a bool, which typer passes through as it is.
    """
    if option is not None and option.default is None:
        option.default = False
    return option


class QuickGroup(TyperGroup):
    """A group whose --help costs nothing at start-up when it is not given."""

    def get_help_option(self, ctx: Any) -> Any:  # typer's Context and Option are private types
        """The help option, defaulting to False."""
        return _quick_help(super().get_help_option(ctx))


class QuickCommand(TyperCommand):
    """A command with a quick --help (as QuickGroup) and placeholders that read plainly."""

    def get_help_option(self, ctx: Any) -> Any:
        """The help option, defaulting to False."""
        return _quick_help(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`reminders timeline [OPTIONS] EXT`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Arguments and options, each with a plain placeholder."""
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append((_option_name(record[0]), record[1]))
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class CommandGroup(typer.Typer):
    """A typer app whose commands are QuickCommands unless told otherwise."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        """As typer's `command`, with QuickCommand as the default class."""
        kwargs.setdefault("cls", QuickCommand)
        return super().command(*args, **kwargs)


def command_group(help: str, **settings: Any) -> typer.Typer:
    """A group of commands, with plain help (typer's rich help adds ~0.3 s to every start)."""
    settings.setdefault("no_args_is_help", True)
    settings.setdefault("cls", QuickGroup)
    return CommandGroup(help=help, rich_markup_mode=None, add_completion=False, **settings)


def parse_date(value: str, option: str = "--procedure-date") -> date:
    """A YYYY-MM-DD date, or a usage error naming the option and how to write it."""
    from reminders.inputs import read_date

    try:
        return read_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_time(value: str | None, option: str = "--procedure-time") -> time | None:
    """An HH:MM local time (or None), or a usage error naming the option and how to write it."""
    from reminders.inputs import read_time

    if value is None or not value.strip():
        return None
    try:
        return read_time(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_zone(value: str, option: str = "--timezone") -> str:
    """An IANA Region/City time zone, or a usage error naming the option (EST: which to use)."""
    from reminders.inputs import time_zone

    try:
        return time_zone(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


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
    from reminders.inputs import since_instant

    if value is None:
        return None
    try:
        return since_instant(value, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
