"""The shipped MILD plan: it checks clean, its timeline is as a clinic expects, and its wording
leaves medicine decisions to the care team."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from reminders.plan_check.check import check_paths
from reminders.plans.loader import LoadedPlan, load_plan
from reminders.schedule import ScheduleInput, compute_schedule
from reminders.templating.context import SAMPLE_CLINIC, Clinic, message_context
from reminders.templating.render import RenderedMessage, TemplateRenderer

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "plans"
TEMPLATES = ROOT / "templates"
PROCEDURE = date(2026, 5, 12)
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]
EVERY_CONDITION = {"takes_blood_thinners": True, "takes_nsaids": True}

# step id, days from the procedure date, local time (procedure at the assumed 08:00)
TIMELINE = [
    ("welcome", -16, time(9, 0)),
    ("review-medicines", -12, time(9, 0)),
    ("blood-thinners", -10, time(9, 0)),
    ("nsaids", -9, time(9, 0)),
    ("ride-home", -5, time(9, 0)),
    ("day-before", -1, time(16, 0)),
    ("discharge", 0, time(12, 0)),
    ("recovery-day-3", 3, time(9, 0)),
    ("recovery-week-1", 7, time(9, 0)),
    ("recovery-week-2", 14, time(9, 0)),
    ("relief-check-week-4", 28, time(10, 0)),
    ("relief-check-week-6", 42, time(10, 0)),
    ("follow-up-3-months", 91, time(9, 0)),
    ("follow-up-6-months", 182, time(9, 0)),
]
MEDICINE_STEPS = ["review-medicines", "blood-thinners", "nsaids"]
CARE_TEAM_PHRASE = {
    "en": "as instructed by your care team",
    "es": "según le indique su equipo médico",
}
# A day count ("7 days", "5-7 días", "seven days") or a dose ("81 mg") in medicine texts.
DAY_COUNT = re.compile(
    r"\d\s*(?:days?|d[ií]as?)\b"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|fourteen)\s+days?\b"
    r"|\b(?:un|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|catorce)\s+d[ií]as?\b",
    re.IGNORECASE,
)
DOSE = re.compile(r"\d\s*(?:mg|mcg|µg|ml|units?|unidades)\b", re.IGNORECASE)
DRUG_NAMES = re.compile(
    r"\b(?:aspirin[a]?|ibuprof[ae]no?|ibuprofen|naproxen[o]?|diclofenac[o]?|celecoxib|"
    r"meloxicam|warfarin[a]?|clopidogrel|apixab[aá]n|rivaroxab[aá]n|dabigatr[aá]n|"
    r"edoxab[aá]n|heparin[a]?|enoxaparin[a]?|prasugrel|ticagrelor)\b",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def mild() -> LoadedPlan:
    return load_plan(PLANS / "mild.yaml")


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer(TEMPLATES)


def enrollment(zone: str = "America/New_York", **extra: Any) -> ScheduleInput:
    values: dict[str, Any] = {"attributes": EVERY_CONDITION, **extra}
    return ScheduleInput(procedure_date=PROCEDURE, timezone=zone, **values)


def render(
    renderer: TemplateRenderer,
    loaded: LoadedPlan,
    step_id: str,
    channel: str,
    language: str,
    *,
    first_sms: bool = True,
    procedure_time: time | None = time(7, 30),
) -> RenderedMessage:
    plan = loaded.plan
    context = message_context(
        plan,
        step_id,
        first_name="Alex",
        procedure_date=PROCEDURE,
        procedure_time=procedure_time,
        clinic=SAMPLE_CLINIC,
        first_sms=first_sms,
    )
    template = plan.step(step_id).template
    return renderer.render(plan.templates_folder, template, channel, language, "en", context)


def every_text(message: RenderedMessage) -> list[str]:
    return [part for part in (message.subject, message.body, message.html) if part]


# ---------------------------------------------------------------------- the file ---


def test_plans_folder_checks_clean() -> None:
    result = check_paths([PLANS], TEMPLATES)
    assert [str(p) for p in result.problems] == []
    assert "mild" in {loaded.plan.id for loaded in result.plans}


def test_plan_identity(mild: LoadedPlan) -> None:
    plan = mild.plan
    assert (plan.id, plan.version, plan.languages, plan.defaults.language) == (
        "mild",
        1,
        ["en", "es"],
        "en",
    )


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_every_step_has_both_templates_in_both_languages(
    renderer: TemplateRenderer, mild: LoadedPlan, channel: str, language: str
) -> None:
    for step in mild.plan.steps:
        message = render(renderer, mild, step.id, channel, language)
        assert message.language == language, step.id
        assert message.body


# ---------------------------------------------------------------------- timeline ---


@pytest.mark.parametrize("zone", ZONES)
def test_timeline_has_every_step_in_order_at_local_times(mild: LoadedPlan, zone: str) -> None:
    messages = compute_schedule(mild.plan, enrollment(zone))
    assert [(m.step_id, m.local_due.date(), m.local_due.time()) for m in messages] == [
        (step_id, PROCEDURE + timedelta(days=days), at) for step_id, days, at in TIMELINE
    ]
    assert all(m.skip_reason is None for m in messages)


def test_discharge_follows_the_actual_procedure_time(mild: LoadedPlan) -> None:
    messages = compute_schedule(mild.plan, enrollment(procedure_time=time(7, 30)))
    discharge = next(m for m in messages if m.step_id == "discharge")
    assert (discharge.local_due.date(), discharge.local_due.time()) == (PROCEDURE, time(11, 30))


def test_discharge_after_a_late_procedure_waits_for_the_morning(mild: LoadedPlan) -> None:
    messages = compute_schedule(mild.plan, enrollment(procedure_time=time(18, 0)))
    discharge = next(m for m in messages if m.step_id == "discharge")
    assert (discharge.local_due.date(), discharge.local_due.time()) == (
        PROCEDURE + timedelta(days=1),
        time(8, 0),
    )


@pytest.mark.parametrize(
    ("value", "included"),
    [(True, True), ("yes", True), ("true", True), (False, False), ("no", False), (None, False)],
)
def test_blood_thinner_step_only_for_patients_on_blood_thinners(
    mild: LoadedPlan, value: object, included: bool
) -> None:
    attributes = {} if value is None else {"takes_blood_thinners": value}
    ids = [m.step_id for m in compute_schedule(mild.plan, enrollment(attributes=attributes))]
    assert ("blood-thinners" in ids) is included


@pytest.mark.parametrize(("value", "included"), [(True, True), (False, False), (None, False)])
def test_nsaid_step_only_for_patients_taking_nsaids(
    mild: LoadedPlan, value: object, included: bool
) -> None:
    attributes = {} if value is None else {"takes_nsaids": value}
    ids = [m.step_id for m in compute_schedule(mild.plan, enrollment(attributes=attributes))]
    assert ("nsaids" in ids) is included


def test_relief_checks_go_by_sms_even_to_email_patients(mild: LoadedPlan) -> None:
    messages = compute_schedule(mild.plan, enrollment(preferred_channel="email", has_email=True))
    channels = {m.step_id: m.channel for m in messages}
    assert (channels["relief-check-week-4"], channels["relief-check-week-6"]) == ("sms", "sms")
    assert channels["welcome"] == "email"


def test_spanish_speakers_get_the_spanish_templates(mild: LoadedPlan) -> None:
    messages = compute_schedule(mild.plan, enrollment(language="es"))
    assert {m.language for m in messages} == {"es"}


# ----------------------------------------------------------------------- wording ---


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize("step_id", MEDICINE_STEPS)
def test_medicine_texts_give_no_day_count_dose_or_drug_name(
    renderer: TemplateRenderer, mild: LoadedPlan, step_id: str, channel: str, language: str
) -> None:
    for text in every_text(render(renderer, mild, step_id, channel, language)):
        assert not DAY_COUNT.search(text), text
        assert not DOSE.search(text), text
        assert not DRUG_NAMES.search(text), text


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize("step_id", MEDICINE_STEPS)
def test_medicine_texts_defer_to_the_care_team(
    renderer: TemplateRenderer, mild: LoadedPlan, step_id: str, channel: str, language: str
) -> None:
    message = render(renderer, mild, step_id, channel, language)
    assert CARE_TEAM_PHRASE[language] in message.body
    if message.html:
        assert CARE_TEAM_PHRASE[language] in message.html


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_sms_starts_with_the_clinic_name(
    renderer: TemplateRenderer, mild: LoadedPlan, language: str
) -> None:
    for step in mild.plan.steps:
        body = render(renderer, mild, step.id, "sms", language, first_sms=False).body
        assert body.startswith(f"{SAMPLE_CLINIC.name}: "), step.id


@pytest.mark.parametrize("language", ["en", "es"])
def test_opt_out_line_only_in_the_first_sms(
    renderer: TemplateRenderer, mild: LoadedPlan, language: str
) -> None:
    for step in mild.plan.steps:
        first = render(renderer, mild, step.id, "sms", language, first_sms=True).body
        later = render(renderer, mild, step.id, "sms", language, first_sms=False).body
        assert "STOP" in first and "STOP" not in later, step.id


@pytest.mark.parametrize("first_sms", [True, False])
def test_english_sms_fit_two_gsm7_segments(
    renderer: TemplateRenderer, mild: LoadedPlan, first_sms: bool
) -> None:
    for step in mild.plan.steps:
        size = render(renderer, mild, step.id, "sms", "en", first_sms=first_sms).sms
        assert size is not None
        assert (step.id, size.encoding, size.segments <= 2) == (step.id, "GSM-7", True)


@pytest.mark.parametrize("first_sms", [True, False])
def test_spanish_sms_fit_the_plan_segment_limit(
    renderer: TemplateRenderer, mild: LoadedPlan, first_sms: bool
) -> None:
    for step in mild.plan.steps:
        size = render(renderer, mild, step.id, "sms", "es", first_sms=first_sms).sms
        assert size is not None
        assert size.segments <= mild.plan.defaults.sms_max_segments, step.id


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_discharge_gives_the_clinic_phone_and_emergency_number(
    renderer: TemplateRenderer, mild: LoadedPlan, channel: str, language: str
) -> None:
    body = render(renderer, mild, "discharge", channel, language).body
    assert SAMPLE_CLINIC.phone in body
    assert str(mild.plan.settings["emergency_number"]) in body


@pytest.mark.parametrize(
    ("language", "scale", "yes_no"), [("en", "0 to 10", "Y or N"), ("es", "del 0 al 10", "S o N")]
)
@pytest.mark.parametrize("step_id", ["relief-check-week-4", "relief-check-week-6"])
def test_relief_checks_ask_for_a_pain_score_and_walking(
    renderer: TemplateRenderer,
    mild: LoadedPlan,
    step_id: str,
    language: str,
    scale: str,
    yes_no: str,
) -> None:
    body = render(renderer, mild, step_id, "sms", language).body
    assert scale in body and yes_no in body


def test_day_before_reads_well_without_a_procedure_time(
    renderer: TemplateRenderer, mild: LoadedPlan
) -> None:
    with_time = render(renderer, mild, "day-before", "sms", "en").body
    without = render(renderer, mild, "day-before", "sms", "en", procedure_time=None).body
    assert "is tomorrow at 7:30 AM." in with_time
    assert "is tomorrow." in without


@pytest.mark.parametrize("language", ["en", "es"])
def test_email_html_escapes_the_clinic_name(
    renderer: TemplateRenderer, mild: LoadedPlan, language: str
) -> None:
    plan = mild.plan
    context = message_context(
        plan,
        "welcome",
        first_name="Alex",
        procedure_date=PROCEDURE,
        procedure_time=None,
        clinic=Clinic(name="Smith & Jones Spine", phone="(555) 010-0199"),
        first_sms=False,
    )
    message = renderer.render("mild", "welcome", "email", language, "en", context)
    assert message.html is not None
    assert "Smith &amp; Jones Spine" in message.html
    assert "Smith & Jones Spine" in message.body
