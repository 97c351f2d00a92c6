"""The plans the service runs, loaded from the plans folder and checked once."""

from __future__ import annotations

from pathlib import Path

from reminders.errors import NotFoundError, PlanError
from reminders.plan_check.check import check_loaded
from reminders.plans.loader import LoadedPlan, load_plans
from reminders.templating.render import TemplateRenderer


class PlanCatalog:
    """Plans by id, with the renderer for their templates; refuses plans that fail the check."""

    def __init__(self, plans_dir: Path, templates_dir: Path) -> None:
        self.plans_dir = plans_dir
        self.renderer = TemplateRenderer(templates_dir)
        self._plans: dict[str, LoadedPlan] | None = None

    def _load(self) -> dict[str, LoadedPlan]:
        if self._plans is None:
            plans = load_plans(self.plans_dir)
            problems = []
            for loaded in plans.values():
                problems.extend(check_loaded(loaded, self.renderer).errors)
            if problems:
                raise PlanError(problems)
            self._plans = plans
        return self._plans

    def reload(self) -> None:
        """Forget loaded plans and templates so the next use reads the files again."""
        self._plans = None
        self.renderer.forget()

    def ids(self) -> list[str]:
        """Every plan id, sorted."""
        return sorted(self._load())

    def get(self, plan_id: str) -> LoadedPlan:
        """One plan; NotFoundError names the plans there are."""
        plans = self._load()
        if plan_id not in plans:
            known = ", ".join(sorted(plans)) or "none"
            raise NotFoundError(f"no plan '{plan_id}' in {self.plans_dir} (plans: {known})")
        return plans[plan_id]
