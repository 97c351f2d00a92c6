"""Messages and Outcomes across patients (filters, delivery problems by error code, relief
checks per week, CSV downloads), and the audit log for admins."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from reminders.channels.twilio_sms import describe_twilio_code
from reminders.console.context import console_context
from reminders.console.filters import Filters, read_filters
from reminders.console.guard import ConsoleRouter, SignedIn
from reminders.console.render import page
from reminders.csv_export import csv_text
from reminders.roles import Role
from reminders.schedule_diff import MessageStatus
from reminders.store.message_records import MessageCursor, MessageView
from reminders.store.records import CONTACT_CHANNELS, contact_channel

routes = ConsoleRouter()
PAGE_SIZE = 100
EXPORT_LIMIT = 50_000
CHANNELS: list[str] = list(CONTACT_CHANNELS)
MESSAGE_FILTERS = ("status", "channel", "plan", "since")
MESSAGE_COLUMNS = (
    "id",
    "external_id",
    "plan_id",
    "step_id",
    "channel",
    "status",
    "status_reason",
    "due_at",
    "sent_at",
    "error_code",
    "provider_status",
    "body",
)
OUTCOME_COLUMNS = (
    "id",
    "external_id",
    "step_id",
    "leg_pain",
    "walking_improved",
    "raw",
    "received_at",
)


def _message_filters(request: Request) -> Filters:
    plans = console_context(request).app.catalog.ids()
    statuses = [s.value for s in MessageStatus]
    return read_filters(
        request, MESSAGE_FILTERS, {"status": statuses, "channel": CHANNELS, "plan": plans}
    )


def _messages(request: Request, filters: Filters, limit: int) -> list[MessageView]:
    cursor = request.query_params.get("before", "")
    try:
        before = MessageCursor.parse(cursor) if cursor else None
    except ValueError:
        before = None
    status, channel = filters.get("status"), filters.get("channel")  # among the choices
    return console_context(request).app.storage.message_views.list_messages(
        status=MessageStatus(status) if status else None,
        channel=contact_channel(channel) if channel else None,
        plan_id=filters.get("plan"),
        since=filters.since,
        limit=limit,
        before=before,
    )


@routes.page("/messages", Role.VIEWER)
def messages(request: Request, identity: SignedIn) -> Response:
    """Messages, most recently changed first, with the delivery problems grouped by code."""
    ctx = console_context(request)
    filters = _message_filters(request)
    rows = _messages(request, filters, PAGE_SIZE)
    problems = [
        (code or "none", describe_twilio_code(code) if code else "no error code given", count)
        for code, count in ctx.app.storage.message_views.delivery_problems(filters.since)
    ]
    return page(
        request,
        "messages.html",
        identity=identity,
        active="messages",
        filters=filters,
        statuses=[s.value for s in MessageStatus],
        channels=CHANNELS,
        plans=ctx.app.catalog.ids(),
        rows=rows,
        delivery_problems=problems,
        next_cursor=str(rows[-1].cursor) if len(rows) >= PAGE_SIZE else None,
    )


@routes.page("/messages.csv", Role.VIEWER)
def messages_csv(request: Request, identity: SignedIn) -> Response:
    """The filtered messages as a CSV file (formula cells neutralised)."""
    del identity
    rows = _messages(request, _message_filters(request), EXPORT_LIMIT)
    body = csv_text(
        MESSAGE_COLUMNS, ([getattr(m, column) for column in MESSAGE_COLUMNS] for m in rows)
    )
    return _download(body, "messages.csv")


@routes.page("/outcomes", Role.VIEWER)
def outcomes(request: Request, identity: SignedIn) -> Response:
    """Relief-check answers per check and one by one, newest first."""
    storage = console_context(request).app.storage
    filters = read_filters(request, ("since",), {})
    return page(
        request,
        "outcomes.html",
        identity=identity,
        active="outcomes",
        filters=filters,
        by_step=storage.outcomes.outcomes_by_step(filters.since),
        rows=storage.outcomes.list_outcomes(since=filters.since, limit=PAGE_SIZE),
    )


@routes.page("/outcomes.csv", Role.VIEWER)
def outcomes_csv(request: Request, identity: SignedIn) -> Response:
    """Relief-check answers as a CSV file (formula cells neutralised)."""
    del identity
    filters = read_filters(request, ("since",), {})
    rows = console_context(request).app.storage.outcomes.list_outcomes(
        since=filters.since, limit=EXPORT_LIMIT
    )
    body = csv_text(
        OUTCOME_COLUMNS, ([getattr(o, column) for column in OUTCOME_COLUMNS] for o in rows)
    )
    return _download(body, "outcomes.csv")


@routes.page("/audit", Role.ADMIN)
def audit(request: Request, identity: SignedIn) -> Response:
    """Every recorded change, newest first (who, what, when, which patient)."""
    filters = read_filters(request, ("actor", "patient"), {})
    before = request.query_params.get("before", "")
    entries = console_context(request).app.storage.access.audit_entries(
        limit=PAGE_SIZE,
        before_id=int(before) if before.isdigit() and len(before) < 12 else None,
        external_id=filters.get("patient"),
        actor=filters.get("actor"),
    )
    return page(
        request,
        "audit.html",
        identity=identity,
        active="audit",
        filters=filters,
        entries=entries,
        next_before=entries[-1].id if len(entries) >= PAGE_SIZE else None,
    )


def _download(body: str, name: str) -> Response:
    return Response(
        body.encode("utf-8-sig"),  # the BOM makes spreadsheets read it as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
