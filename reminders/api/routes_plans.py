"""Plans: what the service runs, and a rendered preview of one plan's schedule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from reminders.api.auth import RequireApiKey
from reminders.api.context import Context
from reminders.api.schemas import (
    ERROR_RESPONSES,
    ErrorOut,
    KeyValue,
    PlanOut,
    PreviewMessageOut,
    PreviewOut,
    ProcedureDate,
    StepOut,
    Text,
)
from reminders.inputs import LocalTime, TimeZoneName
from reminders.plans.model import Plan
from reminders.sample_timeline import PreviewedMessage, sample_timeline
from reminders.store.records import ContactChannel

router = APIRouter(
    prefix="/v1",
    tags=["plans"],
    dependencies=[RequireApiKey],
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorOut, "description": "The plan files do not pass their check."},
    },
)


def _plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        name=plan.name,
        version=plan.version,
        procedure=plan.procedure,
        languages=list(plan.languages),
        steps=[
            StepOut(
                id=step.id,
                phase=step.phase,
                when=step.offset.describe(),
                template=step.template,
                channel=plan.channel_of(step),
                description=step.description,
                conditions=dict(step.when),
            )
            for step in plan.steps
        ],
    )


@router.get("/plans")
def list_plans(ctx: Context) -> list[PlanOut]:
    """Every plan the service runs."""
    catalog = ctx.app.catalog
    return [_plan_out(catalog.get(plan_id).plan) for plan_id in catalog.ids()]


@router.get(
    "/plans/{plan_id}/preview",
    responses={404: {"model": ErrorOut, "description": "No such plan."}},
)
def preview(
    plan_id: Annotated[Text, Path(max_length=64)],
    ctx: Context,
    procedure_date: ProcedureDate,
    timezone: Annotated[TimeZoneName, Query(max_length=64, description="The patient's IANA zone.")],
    procedure_time: LocalTime | None = None,
    language: Annotated[Text | None, Query(max_length=16)] = None,
    channel: ContactChannel = "sms",
    first_name: Annotated[Text, Query(min_length=1, max_length=128)] = "Alex",
    attr: Annotated[
        list[KeyValue], Query(description="A patient attribute as key=value; repeatable.")
    ] = [],  # noqa: B006 - FastAPI copies query defaults
) -> PreviewOut:
    """The plan's messages for one procedure date and time zone, rendered for a sample patient."""
    plan = ctx.app.catalog.get(plan_id).plan
    attributes = dict(item.split("=", 1) for item in attr)
    timeline = sample_timeline(
        plan,
        ctx.app.catalog.renderer,
        ctx.app.clinic,
        procedure_date=procedure_date,
        timezone=timezone,
        procedure_time=procedure_time,
        language=language,
        channel=channel,
        first_name=first_name,
        attributes=attributes,
    )
    return PreviewOut(
        plan_id=plan.id,
        plan_version=plan.version,
        procedure_date=procedure_date,
        timezone=timezone,
        messages=[_preview_message_out(item) for item in timeline],
    )


def _preview_message_out(item: PreviewedMessage) -> PreviewMessageOut:
    planned, rendered = item.planned, item.rendered
    return PreviewMessageOut(
        step_id=planned.step_id,
        phase=planned.phase,
        channel=planned.channel,
        language=rendered.language,
        due_at=planned.due_at,
        local_due=planned.local_due,
        send_before=planned.send_before,
        notes=list(planned.notes),
        skip_reason=planned.skip_reason,
        subject=rendered.subject,
        body=rendered.body,
        sms_segments=rendered.sms.segments if rendered.sms else None,
    )
