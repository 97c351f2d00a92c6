"""Hostile or oversized plan files are refused with file:line, and the other plans still check."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from plan_fixtures import write_demo_plan

from reminders.errors import PlanError, PlanProblem
from reminders.plan_check.check import check_paths
from reminders.plans.loader import MAX_PLAN_BYTES, load_plans

BAD_PLANS = Path(__file__).parent / "bad_inputs" / "plans"


def plans_with(tmp_path: Path, bad_file: str) -> tuple[Path, Path]:
    """The demo plan (valid) and one bad file side by side in a plans folder."""
    plans, templates = write_demo_plan(tmp_path)
    shutil.copy(BAD_PLANS / bad_file, plans / bad_file)
    return plans, templates


@pytest.mark.parametrize(
    ("bad_file", "line", "field", "message"),
    [
        (
            "billion_laughs.yaml",
            8,
            "settings.b[0]",
            "YAML aliases (*name) are not allowed in plan files; write the value out",
        ),
        (
            "recursive_alias.yaml",
            6,
            "steps[1]",
            "YAML aliases (*name) are not allowed in plan files; write the value out",
        ),
        (
            "merge_key.yaml",
            12,
            "steps[1]",
            "YAML merge keys (<<) are not allowed in plan files; write the keys out",
        ),
    ],
)
def test_aliases_are_refused_at_their_line_and_the_other_plans_still_check(
    tmp_path: Path, bad_file: str, line: int, field: str, message: str
) -> None:
    plans, templates = plans_with(tmp_path, bad_file)

    result = check_paths([plans], templates)

    assert result.errors == [PlanProblem(str(plans / bad_file), line, field, message)]
    assert [loaded.plan.id for loaded in result.plans] == ["demo"]


def test_serve_refuses_a_recursive_alias_as_a_plan_error_not_a_traceback(tmp_path: Path) -> None:
    plans, _ = plans_with(tmp_path, "recursive_alias.yaml")

    with pytest.raises(PlanError) as caught:
        load_plans(plans)

    assert [(p.line, p.field) for p in caught.value.problems] == [(6, "steps[1]")]


def test_a_plan_file_over_the_size_limit_is_refused_without_reading_it_all(
    tmp_path: Path,
) -> None:
    plans, templates = write_demo_plan(tmp_path)
    huge = plans / "huge.yaml"
    huge.write_text("# padding\n" * (MAX_PLAN_BYTES // 10 + 1))

    result = check_paths([plans], templates)

    assert result.errors == [
        PlanProblem(
            str(huge),
            None,
            "file",
            "larger than 1,000,000 bytes, the limit for a plan file; split it into several plans",
        )
    ]
    assert [loaded.plan.id for loaded in result.plans] == ["demo"]


def test_a_plan_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    plans, templates = write_demo_plan(tmp_path)
    latin = plans / "latin.yaml"
    latin.write_bytes(b"id: latin\nname: Caf\xe9\n")

    result = check_paths([plans], templates)

    assert result.errors == [
        PlanProblem(str(latin), 2, "file", "not UTF-8 text; save the file as UTF-8")
    ]


def test_a_plan_of_three_thousand_steps_checks_in_seconds(tmp_path: Path) -> None:
    plans, templates = write_demo_plan(
        tmp_path,
        extra_steps="".join(
            f"  - id: extra-{i}\n    phase: recovery\n    offset: {{days: {i % 400 + 1}}}\n"
            "    template: week_one\n"
            for i in range(3000)
        ),
    )
    # CPU seconds of this process, so other work on a shared machine does not count.
    started = time.process_time()

    result = check_paths([plans], templates)

    assert len(result.plans[0].plan.steps) == 3005
    assert result.errors == []
    assert time.process_time() - started < 15


def test_when_conditions_are_read_against_the_declared_attributes(tmp_path: Path) -> None:
    plans, templates = plans_with(tmp_path, "misspelt_attribute.yaml")
    (templates / "misspelt").symlink_to(templates / "demo")
    bad = str(plans / "misspelt_attribute.yaml")

    result = check_paths([plans], templates)

    assert result.errors == [
        PlanProblem(
            bad,
            14,
            "steps[0].when.takes_blood_thinner",
            "unknown attribute; did you mean takes_blood_thinners? "
            "(declared: takes_blood_thinners)",
        ),
        PlanProblem(
            bad,
            19,
            "steps[1].when.takes_blood_thinners",
            "'maybe' is not allowed: expected yes or no",
        ),
    ]
    assert sorted(loaded.plan.id for loaded in result.plans) == ["demo", "misspelt"]
