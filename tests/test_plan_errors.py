"""A bad plan file is reported with its file, line, field and a message a coordinator can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from reminders.errors import PlanError, PlanProblem
from reminders.plan_check.check import check_paths
from reminders.plans.loader import load_plan

# Line numbers of the valid plan below, as the assertions use them.
VALID = """\
id: demo
name: Demo plan
version: 1
procedure: Demo
steps:
  - id: welcome
    phase: pre-procedure
    offset: {days: -7}
    template: welcome
  - id: check-in
    phase: recovery
    offset: {days: 3}
    template: check-in
"""
STEP0_OFFSET_LINE = 8
STEP0_TEMPLATE_LINE = 9
STEP1_ID_LINE = 10
STEP1_PHASE_LINE = 11
STEP1_OFFSET_LINE = 12
STEP1_TEMPLATE_LINE = 13

OPT_OUT = "{% if first_sms %} Reply STOP to opt out.{% endif %}"
GOOD_SMS = "{{ clinic.name }}: Hi {{ patient.first_name }}, see you soon." + OPT_OUT
GOOD_EMAIL = (
    "{% block subject %}Hello{% endblock %}\n"
    "{% block text %}Hi {{ patient.first_name }}{% endblock %}"
)


def edited(old: str, new: str) -> str:
    """The valid plan with one piece of text replaced (which must be there)."""
    assert old in VALID
    return VALID.replace(old, new, 1)


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plans" / "demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_problems(tmp_path: Path, text: str) -> tuple[Path, list[PlanProblem]]:
    """Load a plan that must fail; return its path and every problem reported."""
    path = write_plan(tmp_path, text)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return path, caught.value.problems


def only_problem(tmp_path: Path, text: str) -> tuple[Path, PlanProblem]:
    path, problems = load_problems(tmp_path, text)
    assert len(problems) == 1, problems
    return path, problems[0]


def write_templates(tmp_path: Path, templates: dict[str, str] | None = None) -> Path:
    """A templates folder with good en templates for both steps, overridden by `templates`."""
    root = tmp_path / "templates"
    files = {
        f"demo/en/{name}.{kind}.j2": GOOD_SMS if kind == "sms" else GOOD_EMAIL
        for name in ("welcome", "check-in")
        for kind in ("sms", "email")
    }
    files.update(templates or {})
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def check_errors(tmp_path: Path, plan_text: str, templates_dir: Path) -> list[PlanProblem]:
    path = write_plan(tmp_path, plan_text)
    return check_paths([path], templates_dir).errors


def test_the_valid_plan_loads_and_checks_clean(tmp_path: Path) -> None:
    assert check_errors(tmp_path, VALID, write_templates(tmp_path)) == []


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    text = edited("    template: welcome\n", "    template: welcome\n    chanel: sms\n")
    path, problem = only_problem(tmp_path, text)
    assert (problem.file, problem.line, problem.field) == (str(path), 10, "steps[0].chanel")
    assert "unknown key 'chanel'; did you mean 'channel'?" in problem.message


def test_unknown_top_level_key_suggests_the_close_one(tmp_path: Path) -> None:
    path, problems = load_problems(tmp_path, edited("version: 1", "versoin: 1"))
    unknown = next(p for p in problems if p.field == "versoin")
    assert (unknown.file, unknown.line) == (str(path), 3)
    assert "did you mean 'version'?" in unknown.message


def test_missing_required_field_points_at_its_step(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("    template: check-in\n", ""))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP1_ID_LINE,
        "steps[1].template",
    )
    assert problem.message == "required field is missing"


def test_bad_phase_lists_the_allowed_phases(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("phase: recovery", "phase: after"))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP1_PHASE_LINE,
        "steps[1].phase",
    )
    assert "'pre-procedure', 'day-of', 'recovery' or 'follow-up'" in problem.message


def test_bad_channel_lists_the_allowed_channels(tmp_path: Path) -> None:
    text = edited("    template: welcome\n", "    template: welcome\n    channel: fax\n")
    path, problem = only_problem(tmp_path, text)
    assert (problem.file, problem.line, problem.field) == (str(path), 10, "steps[0].channel")
    assert "'sms', 'email' or 'preferred'" in problem.message


def test_bad_time_format_shows_an_example(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("{days: -7}", "{days: -7, at: 9am}"))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP0_OFFSET_LINE,
        "steps[0].offset.at",
    )
    assert 'expected a local time of day such as "09:00"' in problem.message


def test_hour_out_of_range_is_refused(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("{days: -7}", "{days: -7, at: '25:00'}"))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP0_OFFSET_LINE,
        "steps[0].offset.at",
    )
    assert "hour must be in 0..23" in problem.message


def test_days_and_hours_together_are_refused(tmp_path: Path) -> None:
    path, problem = only_problem(
        tmp_path, edited("{days: 3}", "{days: 3, hours_after_procedure: 4}")
    )
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP1_OFFSET_LINE,
        "steps[1].offset",
    )
    assert "give exactly one of days, weeks or hours_after_procedure" in problem.message
    assert "(got days, hours_after_procedure)" in problem.message


def test_pre_procedure_step_with_positive_offset_is_refused(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("{days: -7}", "{days: 7}"))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP0_OFFSET_LINE,
        "steps[0].offset",
    )
    assert "a pre-procedure step needs a negative days or weeks offset" in problem.message


def test_recovery_step_with_negative_offset_is_refused(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, edited("{days: 3}", "{days: -3}"))
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP1_OFFSET_LINE,
        "steps[1].offset",
    )
    assert "a recovery step cannot be due before the procedure date" in problem.message


def test_bad_duration_shows_the_accepted_forms(tmp_path: Path) -> None:
    text = edited("    template: welcome\n", "    template: welcome\n    max_late: 12 hours\n")
    path, problem = only_problem(tmp_path, text)
    assert (problem.file, problem.line, problem.field) == (str(path), 10, "steps[0].max_late")
    assert 'expected a duration such as "30m", "12h", "2d" or "1w"' in problem.message


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path, problem = only_problem(
        tmp_path, edited("template: welcome\n", "template: welcome: again\n")
    )
    assert (problem.file, problem.line, problem.field) == (
        str(path),
        STEP0_TEMPLATE_LINE,
        "yaml",
    )
    assert problem.message.startswith("not valid YAML: mapping values are not allowed")


def test_duplicate_yaml_key_names_the_second_one(tmp_path: Path) -> None:
    text = edited("    template: check-in\n", "    template: check-in\n    phase: follow-up\n")
    path, problem = only_problem(tmp_path, text)
    assert (problem.file, problem.line, problem.field) == (str(path), 14, "yaml")
    assert "duplicate key 'phase'" in problem.message


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path, problem = only_problem(tmp_path, "- welcome\n- check-in\n")
    assert (problem.file, problem.line, problem.field) == (str(path), 1, "(plan)")
    assert "expected a mapping of plan keys" in problem.message


def test_all_errors_of_one_file_are_reported_together(tmp_path: Path) -> None:
    text = (
        VALID.replace("phase: recovery", "phase: after")
        .replace("{days: -7}", "{days: 7}")
        .replace("    template: check-in\n", "    template: check-in\n    max_late: soon\n")
    )
    path, problems = load_problems(tmp_path, text)
    assert {(p.file, p.line, p.field) for p in problems} == {
        (str(path), STEP0_OFFSET_LINE, "steps[0].offset"),
        (str(path), STEP1_PHASE_LINE, "steps[1].phase"),
        (str(path), 14, "steps[1].max_late"),
    }


def test_duplicate_step_id_is_found_by_the_check(tmp_path: Path) -> None:
    text = edited("  - id: check-in", "  - id: welcome")
    errors = check_errors(tmp_path, text, write_templates(tmp_path))
    assert [(p.line, p.field) for p in errors] == [(STEP1_ID_LINE, "steps[1].id")]
    assert errors[0].file == str(tmp_path / "plans" / "demo.yaml")
    assert "step id 'welcome' is already used by the step at line 6" in errors[0].message


def test_missing_template_names_the_file_it_looked_for(tmp_path: Path) -> None:
    templates = write_templates(tmp_path)
    (templates / "demo/en/check-in.sms.j2").unlink()
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.file, p.line, p.field) for p in errors] == [
        (str(tmp_path / "plans" / "demo.yaml"), STEP1_TEMPLATE_LINE, "steps[1].template")
    ]
    assert f"sms template missing: {templates / 'demo/en/check-in.sms.j2'}" in errors[0].message


def test_default_language_outside_the_plan_languages_is_found(tmp_path: Path) -> None:
    text = edited("procedure: Demo\n", "procedure: Demo\ndefaults:\n  language: es\n")
    errors = check_errors(tmp_path, text, write_templates(tmp_path))
    language = next(p for p in errors if p.field == "defaults.language")
    assert language.line == 6
    assert "'es' is not one of the plan's languages (en)" in language.message


def test_unknown_template_variable_names_the_template(tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path, {"demo/en/welcome.sms.j2": "Hi\n{{ patient.last_name }}\n"}
    )
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.file, p.field) for p in errors] == [
        (str(templates / "demo/en/welcome.sms.j2"), "steps[0].template")
    ]
    assert "unknown variable" in errors[0].message
    assert "last_name" in errors[0].message


def test_unknown_template_variable_names_its_line(tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path, {"demo/en/welcome.sms.j2": "Hi\n{{ patient.last_name }}\n"}
    )
    errors = check_errors(tmp_path, VALID, templates)
    assert errors[0].line == 2


def test_template_syntax_error_names_its_line(tmp_path: Path) -> None:
    templates = write_templates(
        tmp_path, {"demo/en/check-in.email.j2": GOOD_EMAIL + "\n{{ patient.first_name }\n"}
    )
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.file, p.line, p.field) for p in errors] == [
        (str(templates / "demo/en/check-in.email.j2"), 3, "steps[1].template")
    ]
    assert "syntax error: unexpected '}'" in errors[0].message


def test_sms_over_the_segment_limit_is_reported(tmp_path: Path) -> None:
    # 24 characters of clinic name, 420 of text and 23 of opt-out line: 467 = 4 segments.
    long_sms = "{{ clinic.name }}: " + "x" * 420 + OPT_OUT
    templates = write_templates(tmp_path, {"demo/en/welcome.sms.j2": long_sms})
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.file, p.line, p.field) for p in errors] == [
        (str(templates / "demo/en/welcome.sms.j2"), None, "steps[0].template")
    ]
    assert "renders to 467 GSM-7 characters = 4 SMS segments" in errors[0].message
    assert "the plan allows 3 (defaults.sms_max_segments)" in errors[0].message


def test_email_text_outside_the_blocks_is_reported_at_its_line(tmp_path: Path) -> None:
    stray = GOOD_EMAIL + "\n\nPlease bring your insurance card.\n"
    templates = write_templates(tmp_path, {"demo/en/check-in.email.j2": stray})
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.file, p.line, p.field) for p in errors] == [
        (str(templates / "demo/en/check-in.email.j2"), 4, "steps[1].template")
    ]
    assert errors[0].message.startswith(
        "text outside the subject/text/html blocks is never sent: 'Please bring your insurance"
    )


def test_email_expression_outside_the_blocks_is_reported(tmp_path: Path) -> None:
    stray = "{{ clinic.name }}\n" + GOOD_EMAIL
    templates = write_templates(tmp_path, {"demo/en/welcome.email.j2": stray})
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.line, p.field) for p in errors] == [(1, "steps[0].template")]
    assert "never sent: '{{ ... }}'" in errors[0].message


def test_email_text_inside_a_condition_outside_the_blocks_is_reported(tmp_path: Path) -> None:
    stray = GOOD_EMAIL + "\n{% if first_sms %}\nWelcome!\n{% endif %}\n"
    templates = write_templates(tmp_path, {"demo/en/welcome.email.j2": stray})
    errors = check_errors(tmp_path, VALID, templates)
    assert [(p.line, p.message.split(": ", 1)[1]) for p in errors] == [
        (4, "'Welcome!'; move it into a block or delete it")
    ]


def test_email_if_undelivered_on_an_email_step_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = edited(
        "    template: check-in\n",
        "    template: check-in\n    channel: email\n    email_if_undelivered: true\n",
    )
    errors = check_errors(tmp_path, text, write_templates(tmp_path))
    assert [(p.file, p.line, p.field) for p in errors] == [
        (str(tmp_path / "plans" / "demo.yaml"), 15, "steps[1].email_if_undelivered")
    ]
    assert "only an SMS (or preferred-channel) step can fall back to email" in errors[0].message


def test_an_sms_step_that_falls_back_to_email_needs_an_email_template(tmp_path: Path) -> None:
    text = edited(
        "    template: check-in\n",
        "    template: check-in\n    channel: sms\n    email_if_undelivered: true\n",
    )
    templates = write_templates(tmp_path)
    assert check_errors(tmp_path, text, templates) == []
    (templates / "demo/en/check-in.email.j2").unlink()

    errors = check_errors(tmp_path, text, templates)

    assert [(p.line, p.field) for p in errors] == [(STEP1_TEMPLATE_LINE, "steps[1].template")]
    assert "email template missing" in errors[0].message


def test_email_if_undelivered_takes_a_yes_or_no(tmp_path: Path) -> None:
    text = edited(
        "    template: check-in\n", "    template: check-in\n    email_if_undelivered: maybe\n"
    )
    _, problem = only_problem(tmp_path, text)
    assert (problem.line, problem.field) == (14, "steps[1].email_if_undelivered")
