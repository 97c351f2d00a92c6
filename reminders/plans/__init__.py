"""Plan files: the model of a procedure's patient journey and its loader."""

from reminders.plans.loader import load_plan, load_plans
from reminders.plans.model import Phase, Plan, Step, StepChannel

__all__ = ["Phase", "Plan", "Step", "StepChannel", "load_plan", "load_plans"]
