"""Patients: enroll, update, reschedule, cancel, opt back in to SMS, list, and one timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response, status

from reminders.api.auth import FORBIDDEN_RESPONSE, RequireApiKey, StaffKey
from reminders.api.context import Context
from reminders.api.schemas import (
    ERROR_RESPONSES,
    CancelBody,
    CancelOut,
    EnrollmentOut,
    ErrorOut,
    FlagOut,
    InboundOut,
    MessageOut,
    PatientOut,
    RescheduleBody,
    SmsOptInBody,
    SmsOptInOut,
    Text,
    TimelineOut,
)
from reminders.enrollment_input import EnrollmentInput, PatientChanges

router = APIRouter(
    prefix="/v1",
    tags=["patients"],
    dependencies=[RequireApiKey],
    responses={
        **ERROR_RESPONSES,
        403: {"model": ErrorOut, **FORBIDDEN_RESPONSE[403]},
    },
)

ExternalId = Annotated[Text, Path(min_length=1, max_length=128, description="The clinic's id.")]
PlanChoice = Annotated[
    Text | None, Query(max_length=64, description="The plan, when the patient is on several.")
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such patient or enrollment."}
}


@router.post(
    "/enrollments",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": EnrollmentOut, "description": "An existing enrollment, updated."}},
)
def enroll(
    body: EnrollmentInput, response: Response, ctx: Context, actor: StaffKey
) -> EnrollmentOut:
    """Enroll a patient on a plan (201), or update them if already enrolled on it (200).

    Phone numbers are read for the service's default region unless written in E.164 (+1...).
    """
    outcome = ctx.enrollment(actor).enroll_one(body)
    ctx.wake_dispatcher()
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return EnrollmentOut.model_validate(outcome)


@router.patch("/patients/{external_id:path}", responses=_NOT_FOUND)
def update_patient(
    external_id: ExternalId,
    body: PatientChanges,
    ctx: Context,
    actor: StaffKey,
    plan: PlanChoice = None,
) -> EnrollmentOut:
    """Change a patient's contact details or other fields; their schedule is recomputed."""
    outcome = ctx.enrollment(actor).update_patient(external_id, body, plan, dry_run=False)
    ctx.wake_dispatcher()
    return EnrollmentOut.model_validate(outcome)


@router.post("/patients/{external_id:path}/reschedule", responses=_NOT_FOUND)
def reschedule(
    external_id: ExternalId, body: RescheduleBody, ctx: Context, actor: StaffKey
) -> EnrollmentOut:
    """Move a patient's procedure: pending messages are recomputed, sent ones stay."""
    outcome = ctx.enrollment(actor).reschedule(
        external_id, body.procedure_date, body.procedure_time, body.plan
    )
    ctx.wake_dispatcher()
    return EnrollmentOut.model_validate(outcome)


@router.post("/patients/{external_id:path}/cancel", responses=_NOT_FOUND)
def cancel(
    external_id: ExternalId,
    ctx: Context,
    actor: StaffKey,
    body: Annotated[CancelBody | None, Body()] = None,
) -> CancelOut:
    """Cancel a patient's enrollment and every message not yet sent."""
    body = body or CancelBody()
    cancelled = ctx.enrollment(actor).cancel(external_id, body.reason, body.plan)
    return CancelOut(external_id=external_id, cancelled_messages=cancelled)


@router.post("/patients/{external_id:path}/sms-opt-in", responses=_NOT_FOUND)
def sms_opt_in(
    external_id: ExternalId,
    ctx: Context,
    actor: StaffKey,
    body: Annotated[SmsOptInBody | None, Body()] = None,
) -> SmsOptInOut:
    """Opt a patient back in to SMS (they agreed again): every message SMS stopping held back
    comes back while its window is open, except what staff cancelled and steps that went, or
    will go, by email."""
    body = body or SmsOptInBody()
    resumed = ctx.sms_consent(actor).resume_patient(external_id, note=body.note)
    ctx.wake_dispatcher()
    return SmsOptInOut(
        external_id=external_id,
        opted_in=bool(resumed.opted_in),
        restored_messages=resumed.restored,
    )


@router.get("/patients")
def list_patients(
    ctx: Context,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=5000, description="At most this many patients.")] = 500,
    after: Annotated[
        Text | None,
        Query(max_length=128, description="Continue after this external id (X-Next-Cursor)."),
    ] = None,
) -> list[PatientOut]:
    """Patients with their enrollment and message counts, by external id, a page at a time.

    A full page answers with an `X-Next-Cursor` header: pass it as `after` for the next page.
    """
    summaries = ctx.storage.patient_lists.list_patients(limit, after=after)
    if summaries and len({s.external_id for s in summaries}) >= limit:
        response.headers["X-Next-Cursor"] = summaries[-1].external_id
    return [PatientOut.model_validate(p) for p in summaries]


@router.get("/patients/{external_id:path}/timeline", responses=_NOT_FOUND)
def timeline(external_id: ExternalId, ctx: Context) -> TimelineOut:
    """Every message to one patient in due order, their replies and their flags."""
    messages = ctx.storage.message_views.timeline(external_id)
    replies = ctx.storage.inbound.list_inbound(external_id=external_id)
    flags = ctx.storage.outcomes.list_flags(external_id=external_id, open_only=False)
    return TimelineOut(
        external_id=external_id,
        messages=[MessageOut.model_validate(m) for m in messages],
        replies=[InboundOut.model_validate(r) for r in reversed(replies)],
        flags=[FlagOut.model_validate(f) for f in flags],
    )
