"""`reminders doctor`: check the database, the plans and each channel's credentials, sending
nothing to anyone; exits 1 when something needs fixing."""

from __future__ import annotations

import typer

from reminders.cli.options import JsonOption
from reminders.cli.output import echo_line, print_json
from reminders.cli.state import get_state
from reminders.errors import SettingsError


def doctor(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Check the database, the plans and each channel (Twilio: fetch the account; SMTP:
    connect, STARTTLS, log in, NOOP) without texting or emailing anyone."""
    from reminders.channels.registry import build_channels
    from reminders.diagnostics import Check, check_channels, check_database_url, check_plans

    state = get_state(ctx)
    checks = [check_database_url(state.settings.database_url), check_plans(state.catalog)]
    try:
        channels = build_channels(state.settings)
    except (SettingsError, ValueError) as exc:
        checks.append(Check("channels", False, str(exc)))
    else:
        try:
            checks.extend(check_channels(channels))
        finally:
            for channel in channels.values():
                channel.close()
    if json_output:
        print_json(
            {
                "ok": all(c.ok for c in checks),
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
            }
        )
    else:
        for check in checks:
            echo_line(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
