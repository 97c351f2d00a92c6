"""Staff views of what patients answered: relief-check outcomes and the flags to act on."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from reminders.cli.options import JsonOption, parse_since
from reminders.cli.output import print_json, stdout, table, utc_time
from reminders.cli.state import get_state
from reminders.clock import utc_now


def outcomes(
    ctx: typer.Context,
    patient: Annotated[str | None, typer.Option("--patient", help="One patient's id.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help='Received since: "24h", "7d" or an ISO time.')
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Relief-check answers: leg pain 0-10 and whether walking improved, newest first."""
    store = get_state(ctx).app.storage.outcomes
    views = store.list_outcomes(external_id=patient, since=parse_since(since, utc_now()))
    if json_output:
        print_json([asdict(v) for v in views])
        return
    rows = [
        [
            v.external_id,
            v.step_id,
            "" if v.leg_pain is None else str(v.leg_pain),
            {True: "yes", False: "no", None: ""}[v.walking_improved],
            utc_time(v.received_at),
            v.raw,
        ]
        for v in views
    ]
    columns = ["Patient", "Step", "Leg pain", "Walking better", "Received", "Reply"]
    stdout().print(table(f"{len(rows)} outcome(s)", columns, rows))


def flags(
    ctx: typer.Context,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Include flags already resolved.")
    ] = False,
    kind: Annotated[str | None, typer.Option("--kind", help="Only flags of this kind.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Patients the clinic should contact: warning words, no improvement, no reply."""
    from reminders.store.inbound_schema import FlagKind

    if kind is not None and kind not in set(FlagKind):
        kinds = ", ".join(FlagKind)
        raise typer.BadParameter(f"expected one of: {kinds}", param_hint="--kind")
    store = get_state(ctx).app.storage.outcomes
    views = store.list_flags(
        open_only=not include_resolved, kind=FlagKind(kind) if kind is not None else None
    )
    if json_output:
        print_json([asdict(v) for v in views])
        return
    rows = [
        [
            str(v.id),
            v.external_id,
            v.kind,
            v.detail,
            utc_time(v.created_at),
            utc_time(v.resolved_at),
        ]
        for v in views
    ]
    columns = ["Id", "Patient", "Kind", "Detail", "Raised", "Resolved"]
    stdout().print(table(f"{len(rows)} flag(s)", columns, rows))
