"""Plan versions mean something: a digest of what decides a patient's schedule, and the
warnings when a plan file's steps or timing changed without a new `version`, or when the file
is older than the version enrolled patients follow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reminders.errors import PlanProblem
from reminders.plans.loader import LoadedPlan
from reminders.plans.model import Plan


def schedule_digest(plan: Plan) -> str:
    """A short hash of the steps and timing (defaults, caps); names and descriptions left out."""
    data = plan.model_dump(
        mode="json",
        include={"defaults", "sms_caps", "steps"},
        exclude={"defaults": {"sms_consent"}, "steps": {"__all__": {"description"}}},
    )
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AppliedVersion:
    """A version of a plan that active enrollments follow, and the digest it was applied with
    (None for enrollments made before digests were recorded)."""

    plan_id: str
    version: int
    digest: str | None
    enrollments: int


@dataclass(frozen=True)
class EnrolledAttributes:
    """One active enrollment's patient attributes, as stored."""

    plan_id: str
    external_id: str
    attributes: dict[str, Any]


def version_problems(loaded: LoadedPlan, applied: Sequence[AppliedVersion]) -> list[PlanProblem]:
    """Warnings for a plan file compared with what is applied to enrolled patients."""
    plan = loaded.plan
    digest = schedule_digest(plan)
    mine = [a for a in applied if a.plan_id == plan.id]
    changed = [a for a in mine if a.version == plan.version and a.digest not in (None, digest)]
    newer = [a for a in mine if a.version > plan.version]
    where = (str(loaded.path), loaded.line("version"), "version")
    problems = []
    if changed:
        count = sum(a.enrollments for a in changed)
        problems.append(
            PlanProblem(
                *where,
                f"steps or timing differ from v{plan.version} as applied to {count} enrolled "
                f"patient(s), but the version is still {plan.version}: raise it, then "
                f"`reminders plans apply {plan.id}`",
                "warning",
            )
        )
    if newer:
        count = sum(a.enrollments for a in newer)
        latest = max(a.version for a in newer)
        problems.append(
            PlanProblem(
                *where,
                f"{count} enrolled patient(s) follow v{latest}, newer than this file's "
                f"v{plan.version}; `plans apply` would move them back (it asks first)",
                "warning",
            )
        )
    return problems
