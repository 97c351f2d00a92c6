"""What happened across patients: messages, replies, relief-check outcomes and flags."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from reminders.api.auth import FORBIDDEN_RESPONSE, RequireApiKey, StaffKey
from reminders.api.context import ApiContext, Context
from reminders.api.schemas import (
    ERROR_RESPONSES,
    ErrorOut,
    FlagOut,
    InboundOut,
    MessageCursorText,
    MessageOut,
    OutcomeOut,
    ResolveBody,
    Text,
)
from reminders.clock import utc_now
from reminders.errors import EnrollmentError, InputProblem
from reminders.inputs import since_instant
from reminders.store.inbound_schema import FlagKind, InboundKind
from reminders.store.message_records import MessageCursor
from reminders.store.schema import MessageStatus

router = APIRouter(
    prefix="/v1",
    tags=["activity"],
    dependencies=[RequireApiKey],
    responses={
        **ERROR_RESPONSES,
        403: {"model": ErrorOut, **FORBIDDEN_RESPONSE[403]},
    },
)

Limit = Annotated[int, Query(ge=1, le=5000)]
Since = Annotated[
    Text | None,
    Query(
        max_length=40,
        description="Only since then: a duration back from now (24h, 7d) or an ISO date/time "
        "(UTC if no offset).",
        examples=["24h"],
    ),
]


def _since(value: str | None, ctx: ApiContext) -> datetime | None:
    """The `since` parameter as an instant, or a 422 naming it."""
    if value is None:
        return None
    try:
        return since_instant(value, utc_now())
    except ValueError as exc:
        raise EnrollmentError([InputProblem("since", str(exc))]) from None


PatientFilter = Annotated[Text | None, Query(max_length=128, description="One patient only.")]


@router.get("/messages")
def list_messages(
    ctx: Context,
    response: Response,
    status: MessageStatus | None = None,
    since: Since = None,
    limit: Limit = 500,
    before: Annotated[
        MessageCursorText | None,
        Query(max_length=64, description="Continue after a previous page (its X-Next-Cursor)."),
    ] = None,
) -> list[MessageOut]:
    """Outbound messages, most recently changed first, a page at a time.

    A full page answers with an `X-Next-Cursor` header: pass it as `before` for the next page.
    """
    messages = ctx.storage.message_views.list_messages(
        status=status,
        since=_since(since, ctx),
        limit=limit,
        before=MessageCursor.parse(before) if before else None,
    )
    if len(messages) >= limit:
        response.headers["X-Next-Cursor"] = str(messages[-1].cursor)
    return [MessageOut.model_validate(m) for m in messages]


@router.get("/replies")
def list_replies(
    ctx: Context,
    kind: InboundKind | None = None,
    patient: PatientFilter = None,
    since: Since = None,
    limit: Limit = 500,
) -> list[InboundOut]:
    """SMS patients (and unknown numbers) sent us, newest first."""
    replies = ctx.storage.inbound.list_inbound(
        external_id=patient,
        kind=kind,
        since=_since(since, ctx),
        limit=limit,
    )
    return [InboundOut.model_validate(r) for r in replies]


@router.get("/outcomes")
def list_outcomes(
    ctx: Context,
    patient: PatientFilter = None,
    since: Since = None,
    limit: Limit = 500,
) -> list[OutcomeOut]:
    """Relief-check answers (leg pain, walking), newest first."""
    outcomes = ctx.storage.outcomes.list_outcomes(
        external_id=patient, since=_since(since, ctx), limit=limit
    )
    return [OutcomeOut.model_validate(o) for o in outcomes]


@router.get("/flags")
def list_flags(
    ctx: Context,
    kind: FlagKind | None = None,
    patient: PatientFilter = None,
    include_resolved: bool = False,
    limit: Limit = 500,
) -> list[FlagOut]:
    """Patients staff should call or review, newest first; open ones unless asked."""
    flags = ctx.storage.outcomes.list_flags(
        open_only=not include_resolved,
        kind=kind,
        external_id=patient,
        limit=limit,
    )
    return [FlagOut.model_validate(f) for f in flags]


@router.post(
    "/flags/{flag_id}/resolve",
    responses={404: {"model": ErrorOut, "description": "No such flag."}},
)
def resolve_flag(
    flag_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    ctx: Context,
    actor: StaffKey,
    body: Annotated[ResolveBody | None, Body()] = None,
) -> FlagOut:
    """Mark a flag as dealt with, with an optional note."""
    note = body.note if body else ""
    return FlagOut.model_validate(ctx.replies.resolve_flag(flag_id, note, ctx.app.audit(actor)))
