"""Every render is bounded (time, output, `**`, widths, repetition, nesting); a template that goes
over is reported as file:line by `plans check` while the plan's other templates still render."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from plan_fixtures import write_demo_plan

from reminders.errors import PlanProblem, TemplateError
from reminders.plan_check.check import check_paths
from reminders.plans.loader import load_plan
from reminders.templating.context import sample_context
from reminders.templating.render import TemplateRenderer

BAD_TEMPLATES = Path(__file__).parent / "bad_inputs" / "templates"

CASES = [
    ("power.sms.j2", 2, "9 ** 99999999 is too large a number"),
    ("repeat.sms.j2", 2, "repeats a value to more than 100,000 items"),
    ("percent_width.sms.j2", 2, "format width in '%999999999' is too large"),
    ("brace_width.sms.j2", 2, "format width in {:>999999999} is too large"),
    ("center_width.sms.j2", 2, "the width given to |center is too large"),
    ("nested_loops.sms.j2", 2, "took longer than 1 s to render (loops too large?)"),
    ("huge_output.sms.j2", 2, "renders to more than 100,000 characters"),
    ("doubling_concat.sms.j2", 2, "~ builds more than 100,000 characters"),
    ("float_overflow.sms.j2", 2, "a number is too large"),
    ("recursive_macro.sms.j2", 2, "a macro calls itself too deeply"),
    (
        "misspelt_variable.sms.j2",
        1,
        "unknown variable 'frist_name'; did you mean patient.first_name?",
    ),
]


def demo_with_bad_prepare(tmp_path: Path, bad_file: str) -> tuple[Path, Path, Path]:
    """The demo plan whose `prepare` step's SMS template is replaced by a bad one."""
    plans, templates = write_demo_plan(tmp_path)
    target = templates / "demo" / "en" / "prepare.sms.j2"
    shutil.copy(BAD_TEMPLATES / bad_file, target)
    return plans, templates, target


@pytest.mark.parametrize(("bad_file", "line", "message"), CASES)
def test_plans_check_reports_the_template_line_and_renders_the_other_steps(
    tmp_path: Path, bad_file: str, line: int, message: str
) -> None:
    plans, templates, target = demo_with_bad_prepare(tmp_path, bad_file)
    started = time.perf_counter()

    result = check_paths([plans], templates)

    assert time.perf_counter() - started < 10
    assert result.errors == [PlanProblem(str(target), line, "steps[1].template", message)]
    rendered = {(s.step_id, s.channel) for s in result.samples}
    assert rendered == {
        (step, channel)
        for step in ("medicines", "prepare", "ride", "discharge", "week-one")
        for channel in ("sms", "email")
    } - {("prepare", "sms")}


@pytest.mark.parametrize(("bad_file", "line", "message"), CASES[:3])
def test_a_render_error_names_file_and_line_for_the_dispatcher_too(
    tmp_path: Path, bad_file: str, line: int, message: str
) -> None:
    plans, templates, _ = demo_with_bad_prepare(tmp_path, bad_file)
    plan = load_plan(plans / "demo.yaml").plan

    with pytest.raises(TemplateError) as caught:
        TemplateRenderer(templates).render(
            "demo", "prepare", "sms", "en", "en", sample_context(plan, "prepare")
        )

    assert str(caught.value) == f"demo/en/prepare.sms.j2:{line}: {message}"


def test_ordinary_templates_still_render_loops_filters_and_formatting(tmp_path: Path) -> None:
    (tmp_path / "demo" / "en").mkdir(parents=True)
    (tmp_path / "demo" / "en" / "ok.sms.j2").write_text(
        "{% for n in range(3) %}{{ '%02d' % n }}{% endfor %} {{ 'ab' * 2 }} {{ 2 ** 10 }} "
        "{{ '{:>4}'.format('x') }} {{ 'x' | center(5) }}|{{ ['a', 'b'] | join(',') }} "
        "{{ 'a' ~ 'b' }}"
    )
    plan = load_plan(write_demo_plan(tmp_path / "p")[0] / "demo.yaml").plan

    message = TemplateRenderer(tmp_path).render(
        "demo", "ok", "sms", "en", "en", sample_context(plan, "prepare")
    )

    assert message.body == "000102 abab 1024    x   x  |a,b ab"
