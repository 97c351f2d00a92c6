"""Today, the landing page: flags to act on, messages in trouble, recent replies, what is next."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from reminders.clock import utc_now
from reminders.console.context import console_context
from reminders.console.guard import PREFIX, ConsoleRouter, SignedIn
from reminders.console.render import page
from reminders.errors import EnrollmentError, NotFoundError
from reminders.roles import Role
from reminders.schedule_diff import MessageStatus

routes = ConsoleRouter()
LIST_LIMIT = 100
NOTICES = {
    "resolved": "The flag is resolved.",
    "gone": "That flag was already resolved (or no longer exists).",
}
FlagId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@routes.page("/today", Role.VIEWER)
def today(request: Request, identity: SignedIn) -> Response:
    """Open flags (with the reply that raised them), messages in trouble or waiting, replies of
    the last 24 hours, and what goes out next."""
    storage = console_context(request).app.storage
    since = utc_now() - timedelta(hours=24)
    flags = storage.outcomes.list_flags(open_only=True, limit=LIST_LIMIT)
    flag_replies = storage.inbound.replies_to([f.message_id for f in flags if f.message_id])
    troubled = [
        message
        for status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
        for message in storage.message_views.list_messages(status=status, limit=LIST_LIMIT)
    ]
    return page(
        request,
        "today.html",
        identity=identity,
        active="today",
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
        flags=flags,
        flag_replies=flag_replies,
        troubled=sorted(troubled, key=lambda m: m.updated_at, reverse=True)[:LIST_LIMIT],
        waiting=storage.message_views.upcoming(waiting=True, limit=LIST_LIMIT),
        replies=storage.inbound.list_inbound(since=since, limit=LIST_LIMIT),
        upcoming=storage.message_views.upcoming(limit=20),
        can_change=identity.role.allows(Role.STAFF),
    )


@routes.action("/flags/{flag_id}/resolve", Role.STAFF)
def resolve_flag(
    request: Request,
    identity: SignedIn,
    flag_id: FlagId,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Mark a flag as dealt with, with the note the user wrote (the audit log records it)."""
    ctx = console_context(request)
    try:
        ctx.replies.resolve_flag(flag_id, note, ctx.app.audit(identity.actor))
    except NotFoundError:
        return RedirectResponse(f"{PREFIX}/today?notice=gone", status_code=303)
    except EnrollmentError as exc:
        # The note as typed goes back in the form, to shorten or correct and send again.
        retry = {"action": f"{PREFIX}/flags/{flag_id}/resolve", "note": note}
        return page(
            request,
            "refused.html",
            status_code=422,
            identity=identity,
            message=str(exc),
            retry=retry,
        )
    return RedirectResponse(f"{PREFIX}/today?notice=resolved", status_code=303)
