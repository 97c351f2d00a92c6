"""`reminders api-keys ...`: the keys staff systems use to call the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.options import JsonOption, command_group
from reminders.cli.output import echo_line, print_json, stdout, table, utc_time
from reminders.cli.state import get_state
from reminders.roles import ROLE_NAMES, parse_role

app = command_group("Create, list and revoke HTTP API keys.")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what will use the key.")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help=f"What the key may do, as the console's roles: {', '.join(ROLE_NAMES)}.",
            show_default=False,
        ),
    ],
) -> None:
    """Create a key and print it once; only its hash is stored."""

    if not name.strip():
        raise typer.BadParameter("give the key a name", param_hint="NAME")
    try:
        role = parse_role(scope)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from None
    state = get_state(ctx)
    key, record = state.app.access().create_api_key(name, role, state.actor)
    echo_line(key)
    echo_line(
        f"created {record.scope} API key {record.id} '{record.name}' ({record.prefix}…); "
        "store it now: it cannot be shown again",
        err=True,
    )


@app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every key (never the keys themselves), revoked ones included."""
    records = get_state(ctx).app.access().api_keys()
    if json_output:
        print_json(records)
        return
    rows = [
        [
            r.id,
            r.name,
            r.scope,
            r.prefix,
            utc_time(r.created_at),
            utc_time(r.revoked_at) or "active",
        ]
        for r in records
    ]
    stdout().print(table(None, ["ID", "Name", "Scope", "Prefix", "Created", "Revoked"], rows))


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="ID_OR_PREFIX", help="As `list` shows it.")],
) -> None:
    """Revoke a key; requests using it are refused from now on."""
    state = get_state(ctx)
    record = state.app.access().revoke_api_key(key, state.actor)
    echo_line(f"revoked API key {record.id} '{record.name}' ({record.prefix}…)")
