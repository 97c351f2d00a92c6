"""Messaging-compliance checks of a plan: frequency caps, clinic name, opt-out line, words.

The dispatcher enforces caps at send time (deferring, never dropping); these checks catch at
plan-check time what a coordinator can still fix in the file.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, time, timedelta

from reminders.errors import PlanProblem
from reminders.plans.loader import LoadedPlan
from reminders.schedule import ScheduleInput, compute_schedule
from reminders.templating.context import SAMPLE_CLINIC
from reminders.templating.render import RenderedMessage

OPT_OUT_PHRASE = re.compile(r"\bSTOP\b")
TYPICAL_PROCEDURE = date(2026, 3, 10)


def typical_enrollment(loaded: LoadedPlan) -> ScheduleInput:
    """A patient who meets every step's condition and prefers SMS: the busiest timeline."""
    attributes: dict[str, object] = {}
    for step in loaded.plan.steps:
        for key, value in step.when.items():
            attributes[key] = value[0] if isinstance(value, list) else value
    return ScheduleInput(
        procedure_date=TYPICAL_PROCEDURE,
        procedure_time=time(8, 0),
        timezone="America/New_York",
        attributes=attributes,
        preferred_channel="sms",
        has_phone=True,
        has_email=True,
    )


def cap_warnings(loaded: LoadedPlan) -> Iterable[PlanProblem]:
    """Warn where a typical timeline sends more SMS in a day or a week than the caps allow."""
    plan = loaded.plan
    messages = [m for m in compute_schedule(plan, typical_enrollment(loaded)) if m.channel == "sms"]
    per_day: dict[date, list[str]] = defaultdict(list)
    for message in messages:
        per_day[message.local_due.date()].append(message.step_id)
    for day, step_ids in sorted(per_day.items()):
        count = len(step_ids)
        if count > plan.sms_caps.per_day:
            steps = ", ".join(step_ids)
            offset = (day - TYPICAL_PROCEDURE).days
            yield PlanProblem(
                str(loaded.path),
                loaded.line("sms_caps"),
                "sms_caps.per_day",
                f"{count} SMS on procedure day {offset:+d} ({steps}) exceed the cap of "
                f"{plan.sms_caps.per_day}/day; the dispatcher will defer the extra ones",
                "warning",
            )
    by_due = sorted(messages, key=lambda m: m.due_at)
    dues = [m.due_at for m in by_due]
    for index, first in enumerate(by_due):
        window = by_due[index : bisect_left(dues, first.due_at + timedelta(days=7))]
        if len(window) > plan.sms_caps.per_week:
            steps = ", ".join(m.step_id for m in window)
            yield PlanProblem(
                str(loaded.path),
                loaded.line("sms_caps"),
                "sms_caps.per_week",
                f"{len(window)} SMS within 7 days ({steps}) exceed the cap of "
                f"{plan.sms_caps.per_week}/week; the dispatcher will defer the extra ones",
                "warning",
            )
            break


def sms_content_problems(
    loaded: LoadedPlan, field: str, template_file: str, first: RenderedMessage
) -> Iterable[PlanProblem]:
    """Check one SMS template rendered as a patient's first SMS."""
    body = first.body
    if SAMPLE_CLINIC.name not in body:
        yield PlanProblem(
            template_file, None, field, "every SMS must name the clinic ({{ clinic.name }})"
        )
    if not OPT_OUT_PHRASE.search(body):
        yield PlanProblem(
            template_file,
            None,
            field,
            'the first SMS a patient gets must say how to opt out ("Reply STOP to opt out"); '
            "add it under {% if first_sms %}",
        )
    for word in loaded.plan.sms_forbidden_words:
        if re.search(rf"\b{re.escape(word)}\b", body, flags=re.IGNORECASE):
            yield PlanProblem(
                template_file,
                None,
                field,
                f"contains '{word}', which sms_forbidden_words keeps out of text messages",
            )
