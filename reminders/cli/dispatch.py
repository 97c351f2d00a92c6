"""Sending: `send-due` runs one dispatch pass; `serve` runs the dispatcher (and the HTTP API)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reminders.cli.errors import EXIT_AFTER_PASS_FAILED
from reminders.cli.options import JsonOption
from reminders.cli.output import counts_line, echo_line, print_json, utc_time
from reminders.cli.state import get_state
from reminders.clock import utc_now
from reminders.errors import AfterPassError, FailureKind, describe_error

if TYPE_CHECKING:
    from reminders.app import App
    from reminders.channels.base import Channel
    from reminders.dispatch.dispatcher import Dispatcher
    from reminders.dispatch.service import DispatchService
    from reminders.settings import Settings


def _close_channels(dispatcher: Dispatcher) -> None:
    for channel in dispatcher.channels.values():
        channel.close()


def _channels(settings: Settings, quiet_stdout: bool) -> dict[str, Channel]:
    """The configured channels; with `quiet_stdout` the console channel prints on stderr."""
    from reminders.channels.console import ConsoleChannel
    from reminders.channels.registry import build_channels

    channels = build_channels(settings)
    if not quiet_stdout:
        return channels
    return {
        name: ConsoleChannel(name, settings.outbox_file, stream=sys.stderr)
        if isinstance(channel, ConsoleChannel)
        else channel
        for name, channel in channels.items()
    }


def send_due(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Send every message that is due now (one dispatch pass) and count the outcomes; then do
    what `serve` does after each pass: apply the delivery reports that came before their sends
    were committed and flag relief checks left unanswered.

    Exit status: 0 when all went well; 3 when the pass's sends are committed (and counted)
    but what runs after them failed, named on standard error (the next run tries it again);
    1 when the pass itself failed (a database that does not answer is said in one line).
    """
    app = get_state(ctx).app
    dispatcher = app.dispatcher(_channels(app.settings, quiet_stdout=json_output))
    try:
        report = dispatcher.run_once()
    finally:
        _close_channels(dispatcher)
    after: AfterPassError | None = None
    try:
        app.replies().after_pass(report)
    except AfterPassError as error:
        after = error
    outcomes = dict(sorted(report.outcomes.items()))
    next_due = app.storage.outbox.next_due_at()
    if json_output:
        print_json({"handled": report.handled, "outcomes": outcomes, "next_due_utc": next_due})
    else:
        echo_line(f"{report.handled} message(s) handled: {counts_line(outcomes)}")
        echo_line(f"next due: {utc_time(next_due) or 'nothing pending'}")
    if after is not None:
        _report_after_pass(report.handled, after)
        raise typer.Exit(EXIT_AFTER_PASS_FAILED)


def _report_after_pass(handled: int, error: AfterPassError) -> None:
    """On standard error: the sends stand; what failed after them, in words, one line each."""
    echo_line(
        f"error: the pass's sends are committed ({handled} message(s) handled); "
        "what runs after it failed (the next run tries it again):",
        err=True,
    )
    for step, cause in error.failures:
        echo_line(f"error: {step}: {describe_error(cause)}", err=True)


def database_label(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_channels_at_start(dispatcher: Dispatcher) -> None:
    """Check each channel's settings once; a configuration error stops that channel."""
    from reminders.diagnostics import check_channels

    now = utc_now()
    for check in check_channels(dispatcher.channels):
        if check.error is not None and check.error.kind is FailureKind.CHANNEL_CONFIGURATION:
            dispatcher.health.stop(check.name, check.error, now)


def banner(app: App, dispatcher: Dispatcher, api: str) -> list[str]:
    """What the service runs with, for the first lines of its output."""
    from reminders.channels.registry import describe_channels

    plans = [app.catalog.get(plan_id).plan for plan_id in app.catalog.ids()]
    next_due = app.storage.outbox.next_due_at()
    stopped = [
        f"  STOPPED:  {state.name}: {state.reason} (messages wait; see `reminders doctor`)"
        for state in dispatcher.health.states()
        if not state.ok
    ]
    return [
        "reminders service",
        f"  database: {database_label(app.settings.database_url)}",
        f"  channels: {describe_channels(dispatcher.channels)}",
        *stopped,
        "  plans:    " + (", ".join(f"{p.id} v{p.version}" for p in plans) or "none"),
        f"  next due: {_next_due(next_due)}",
        f"  api:      {api}",
        *(
            [f"  console:  {api}/console/ (sign in as a user from `reminders users create`)"]
            if api.startswith("http")
            else []
        ),
    ]


def _next_due(at: datetime | None) -> str:
    if at is None:
        return "nothing pending"
    wait = at - utc_now()
    return utc_time(at) + (" (overdue)" if wait.total_seconds() <= 0 else f" (in {_span(wait)})")


def _span(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so both stop the service the same clean way."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, request_stop)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def background_dispatch(app: App, dispatcher: Dispatcher) -> DispatchService:
    """The dispatcher as `serve` runs it: a pass when due, woken by other processes' changes;
    after each pass, the delivery reports kept until its commit and missing replies."""
    from reminders.dispatch.service import DispatchService

    return DispatchService(
        dispatcher,
        on_pass=app.replies().after_pass,
        changes=app.storage.database.change_listener,
    )


def serve(
    ctx: typer.Context,
    no_api: Annotated[bool, typer.Option("--no-api", help="Run only the dispatcher.")] = False,
    host: Annotated[str | None, typer.Option("--host", help="API address.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="API port.")] = None,
) -> None:
    """Send messages as they fall due and serve the HTTP API, until Ctrl-C or SIGTERM."""
    from reminders.api.app import create_app
    from reminders.integrations.wiring import mllp_line, start_mllp

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state = get_state(ctx)
    app = state.app
    dispatcher = app.dispatcher()
    service = background_dispatch(app, dispatcher)
    host = host or state.settings.api_host
    port = port or state.settings.api_port
    api = None if no_api else create_app(app, service)
    api_line = "off (--no-api)" if api is None else f"http://{host}:{port}"
    check_channels_at_start(dispatcher)
    listener = start_mllp(app)
    with stop_on_signals() as stop:
        for line in [*banner(app, dispatcher, api_line), mllp_line(listener)]:
            echo_line(line)
        service.start()
        try:
            if api is None:
                while not stop.wait(1.0):
                    pass
            elif not stop.is_set():
                import uvicorn  # uvicorn handles SIGINT and SIGTERM while it runs

                uvicorn.run(api, host=host, port=port, log_level="info")
        finally:
            echo_line("stopping: finishing the pass in progress")
            if listener is not None:
                listener.stop()
            service.stop()
            _close_channels(dispatcher)
    echo_line("stopped")
