"""A small, complete plan with templates, written into a temporary folder for tests."""

from __future__ import annotations

from pathlib import Path

from reminders.templating.context import Clinic

CLINIC = Clinic("Riverside Clinic", "(555) 010-0100")  # who the demo plan's messages come from

PLAN = """\
id: demo
name: Demo recovery plan
version: {version}
procedure: Demo procedure
languages: [en]
defaults:
  send_time: "09:00"
  quiet_hours: {{start: "21:00", end: "08:00"}}
  channel: preferred
  max_late: 12h
  assumed_procedure_time: "08:00"
sms_caps: {{per_day: 3, per_week: 10}}
attributes:
  takes_blood_thinners:
    type: yes/no
    description: The care team recorded that the patient takes a blood thinner.
steps:
  - id: medicines
    phase: pre-procedure
    offset: {{days: -3, at: "10:00"}}
    template: medicines
    when: {{takes_blood_thinners: true}}
  - id: prepare
    phase: pre-procedure
    offset: {{days: -2, at: "10:00"}}
    template: prepare
  - id: ride
    phase: pre-procedure
    offset: {{days: -1, at: "18:00"}}
    template: ride
    max_late: 2h
  - id: discharge
    phase: day-of
    offset: {{hours_after_procedure: 3}}
    template: discharge
  - id: week-one
    phase: recovery
    offset: {{days: 7}}
    template: week_one
{extra}"""

TEMPLATES = {
    "medicines": "{{ clinic.name }}: Hi {{ patient.first_name }}, review your blood thinners "
    "as instructed by your care team.",
    "prepare": "{{ clinic.name }}: Hi {{ patient.first_name }}, your procedure is on "
    "{{ procedure.date | longdate(language) }}.",
    "ride": "{{ clinic.name }}: please arrange a ride home for tomorrow.",
    "discharge": "{{ clinic.name }}: soreness is common. Call {{ clinic.phone }} with fever.",
    "week_one": "{{ clinic.name }}: light activity only this week, {{ patient.first_name }}.",
}


def write_demo_plan(root: Path, version: int = 1, extra_steps: str = "") -> tuple[Path, Path]:
    """Write plans/demo.yaml and its templates under `root`; returns (plans, templates)."""
    plans = root / "plans"
    templates = root / "templates"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "demo.yaml").write_text(PLAN.format(version=version, extra=extra_steps))
    folder = templates / "demo" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TEMPLATES.items():
        opt_out = "{% if first_sms %} Reply STOP to opt out.{% endif %}"
        (folder / f"{name}.sms.j2").write_text(text + opt_out + "\n")
        (folder / f"{name}.email.j2").write_text(
            "{% block subject %}" + name.replace("_", " ").title() + "{% endblock %}\n"
            "{% block text %}" + text + "{% endblock %}\n"
            "{% block html %}<p>" + text + "</p>{% endblock %}\n"
        )
    return plans, templates
