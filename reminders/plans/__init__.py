"""Plan files: the model of a procedure's patient journey and its loader."""

from reminders.plans.loader import load_plan, load_plans
from reminders.plans.model import Channel, Phase, Plan, Step

__all__ = ["Channel", "Phase", "Plan", "Step", "load_plan", "load_plans"]
