"""Compliance is checked when a plan is checked, and enforced when a message is sent."""

from __future__ import annotations

from pathlib import Path

from plan_fixtures import write_demo_plan

from reminders.plan_check.check import check_paths


def _check(root: Path) -> list[str]:
    result = check_paths([root / "plans"], root / "templates")
    return [f"{p.severity}: {p}" for p in result.problems]


def test_demo_plan_is_compliant(tmp_path: Path) -> None:
    write_demo_plan(tmp_path)
    assert _check(tmp_path) == []


def test_sms_that_does_not_name_the_clinic_fails_the_check(tmp_path: Path) -> None:
    write_demo_plan(tmp_path)
    template = tmp_path / "templates/demo/en/ride.sms.j2"
    template.write_text(
        "Please arrange a ride home.{% if first_sms %} Reply STOP to opt out.{% endif %}"
    )
    problems = _check(tmp_path)
    assert problems == [
        f"error: {template}: steps[2].template: "
        "every SMS must name the clinic ({{ clinic.name }})"
    ]


def test_sms_that_cannot_say_how_to_opt_out_fails_the_check(tmp_path: Path) -> None:
    write_demo_plan(tmp_path)
    template = tmp_path / "templates/demo/en/discharge.sms.j2"
    template.write_text("{{ clinic.name }}: soreness is common.")
    (problem,) = _check(tmp_path)
    assert problem.startswith(f"error: {template}: steps[3].template: the first SMS")
    assert "Reply STOP to opt out" in problem


def test_forbidden_words_are_reported_where_a_template_renders_them(tmp_path: Path) -> None:
    plans, _ = write_demo_plan(tmp_path)
    text = (plans / "demo.yaml").read_text()
    (plans / "demo.yaml").write_text(
        text.replace("sms_caps:", 'sms_forbidden_words: ["procedure", "stenosis"]\nsms_caps:')
    )
    problems = _check(tmp_path)
    assert problems == [
        f"error: {tmp_path}/templates/demo/en/prepare.sms.j2: steps[1].template: contains "
        "'procedure', which sms_forbidden_words keeps out of text messages"
    ]


def test_check_warns_where_a_typical_timeline_exceeds_the_caps(tmp_path: Path) -> None:
    plans, _ = write_demo_plan(tmp_path)
    text = (plans / "demo.yaml").read_text()
    (plans / "demo.yaml").write_text(
        text.replace("{per_day: 3, per_week: 10}", "{per_day: 1, per_week: 3}")
    )
    problems = _check(tmp_path)
    assert all(p.startswith("warning: ") for p in problems)
    assert any(
        "sms_caps.per_week: 4 SMS within 7 days (medicines, prepare, ride, discharge)" in p
        for p in problems
    )
    assert not any("per_day" in p for p in problems)


def test_check_warns_about_two_sms_on_one_day(tmp_path: Path) -> None:
    plans, _ = write_demo_plan(
        tmp_path,
        extra_steps='  - id: evening\n    phase: day-of\n    offset: {days: 0, at: "19:00"}\n'
        "    template: discharge\n",
    )
    text = (plans / "demo.yaml").read_text()
    (plans / "demo.yaml").write_text(text.replace("per_day: 3", "per_day: 1"))
    problems = _check(tmp_path)
    caps_line = text.splitlines().index("sms_caps: {per_day: 3, per_week: 10}") + 1
    assert problems == [
        f"warning: {plans / 'demo.yaml'}:{caps_line}: "
        "sms_caps.per_day: 2 SMS on procedure day +0 (discharge, evening) exceed the cap of "
        "1/day; the dispatcher will defer the extra ones"
    ]
