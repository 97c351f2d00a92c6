"""`reminders users ...`: the staff who sign in to the console, and their roles."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.options import JsonOption, command_group
from reminders.cli.output import echo_line, print_json, stdout, table, utc_time
from reminders.cli.state import get_state
from reminders.roles import ROLE_NAMES, Role, parse_role

app = command_group("Create, list and disable console users; reset passwords.")

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The user's sign-in name.")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (for scripts)."),
]


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from None


def _new_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        return typer.get_text_stream("stdin").readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArgument,
    role: Annotated[
        str, typer.Option("--role", help=f"One of: {', '.join(ROLE_NAMES)}.", show_default=False)
    ],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (asks for the password; at least 12 characters; stored with Argon2)."""
    state = get_state(ctx)
    chosen = _role(role)
    user = state.app.access().create_user(name, chosen, _new_password(password_stdin), state.actor)
    echo_line(f"created {user.role.value} '{user.name}'")


@app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every user with their role, and whether they are disabled or locked."""
    users = get_state(ctx).app.access().users()
    if json_output:
        print_json(users)
        return
    rows = [
        [
            u.name,
            u.role.value,
            utc_time(u.created_at),
            utc_time(u.disabled_at) or "",
            utc_time(u.locked_until) or "",
        ]
        for u in users
    ]
    stdout().print(table(None, ["Name", "Role", "Created", "Disabled", "Locked until"], rows))


@app.command("disable")
def disable(ctx: typer.Context, name: NameArgument) -> None:
    """Refuse a user's sign-ins from now on and end their sessions."""
    state = get_state(ctx)
    user = state.app.access().disable_user(name, state.actor)
    echo_line(f"disabled '{user.name}'; their sessions have ended")


@app.command("reset-password")
def reset_password(
    ctx: typer.Context, name: NameArgument, password_stdin: PasswordStdin = False
) -> None:
    """Give a user a new password (also lifts a lockout)."""
    state = get_state(ctx)
    user = state.app.access().reset_password(name, _new_password(password_stdin), state.actor)
    echo_line(f"new password set for '{user.name}'")
