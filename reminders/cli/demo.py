"""`reminders demo`: made-up patients whose first message arrives within about a minute."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.output import echo_line, utc_time
from reminders.cli.state import get_state
from reminders.clock import utc_now


def demo(
    ctx: typer.Context,
    plan: Annotated[str, typer.Option("--plan", help="Plan id.")] = "mild",
    clean: Annotated[bool, typer.Option("--clean", help="Remove the demo patients.")] = False,
) -> None:
    """Enroll made-up patients whose first message falls due within a minute, at any hour
    (console outbox only; each run replaces the last); --clean removes them."""
    from reminders.channels.registry import build_channels
    from reminders.demo import DemoService

    state = get_state(ctx)
    app = state.app
    service = DemoService(state.enrollment(), app.storage.patients, app.catalog, utc_now)
    if clean:
        removed = service.clean()
        echo_line(f"removed {', '.join(removed)}" if removed else "no demo patients to remove")
        return
    channels = build_channels(state.settings)
    try:
        run = service.run(plan, channels)
    finally:
        for channel in channels.values():
            channel.close()
    wait = int((run.due_at - utc_now()).total_seconds())
    echo_line(
        f"enrolled made-up patients {', '.join(run.external_ids)} on {run.plan_id} in "
        f"{run.zone}, where it is daytime"
    )
    echo_line(f"their '{run.step_id}' message falls due at {utc_time(run.due_at)} (in {wait} s)")
    echo_line("watch it arrive:")
    echo_line("  in the terminal running `reminders serve` (bash scripts/run.sh)")
    echo_line(f"  in {state.settings.outbox_file} (one JSON line a message)")
    echo_line(f"  with `reminders timeline {run.external_ids[0]}`")
    echo_line("  no service running? `reminders send-due` once it is due sends it")
    echo_line("remove them: reminders demo --clean")
