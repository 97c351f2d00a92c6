"""A plan's version means something: a changed schedule under the same version, or a file older
than what patients follow, is reported; wording and descriptions are not."""

from __future__ import annotations

from pathlib import Path

from reminders.plans.loader import load_plan
from reminders.plans.versions import AppliedVersion, schedule_digest, version_problems

ROOT = Path(__file__).resolve().parents[1]
MILD = load_plan(ROOT / "plans" / "mild.yaml")


def applied(version: int, digest: str | None, enrollments: int = 3) -> AppliedVersion:
    return AppliedVersion("mild", version, digest, enrollments)


def test_the_same_schedule_under_the_same_version_is_fine() -> None:
    digest = schedule_digest(MILD.plan)
    assert version_problems(MILD, [applied(MILD.plan.version, digest)]) == []


def test_a_changed_schedule_under_the_same_version_is_a_warning_at_the_version_line() -> None:
    [problem] = version_problems(MILD, [applied(MILD.plan.version, "0123456789abcdef")])

    assert (problem.file, problem.line, problem.field) == (str(MILD.path), 21, "version")
    assert problem.severity == "warning"
    assert "steps or timing differ from v1 as applied to 3 enrolled patient(s)" in problem.message


def test_a_newer_applied_version_is_a_warning() -> None:
    [problem] = version_problems(MILD, [applied(MILD.plan.version + 1, None, 2)])

    assert problem.message.startswith("2 enrolled patient(s) follow v2, newer than this file's v1")


def test_enrollments_from_before_digests_and_other_plans_are_left_alone() -> None:
    others = [applied(MILD.plan.version, None), AppliedVersion("knee", 9, "x", 1)]
    assert version_problems(MILD, others) == []


def test_the_digest_ignores_names_and_descriptions_but_not_timing() -> None:
    plan = MILD.plan
    renamed = plan.model_copy(update={"name": "Renamed"})
    steps = list(plan.steps)
    steps[0] = steps[0].model_copy(update={"description": "Another description"})
    described = plan.model_copy(update={"steps": steps})
    later = list(plan.steps)
    offset = later[0].offset.model_copy(update={"days": -15})
    later[0] = later[0].model_copy(update={"offset": offset})
    retimed = plan.model_copy(update={"steps": later})

    assert schedule_digest(renamed) == schedule_digest(plan)
    assert schedule_digest(described) == schedule_digest(plan)
    assert schedule_digest(retimed) != schedule_digest(plan)
