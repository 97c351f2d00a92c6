"""The README is complete and true: every setting listed, the plan in brief as plans/mild.yaml
has it, and the PostgreSQL skip message names the database the tests use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from reminders.plans.loader import load_plan
from reminders.plans.model import Plan
from reminders.settings import Settings
from tests.conftest import how_to_run_postgres

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_setting_is_listed() -> None:
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section("Settings")))
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in listed]
    assert missing == []


def test_the_plan_in_brief_is_what_plans_mild_yaml_says() -> None:
    block = re.search(r"```yaml\n(id: mild\n.*?)```", README, re.DOTALL)
    assert block is not None
    brief_data = yaml.safe_load(block.group(1))
    brief = Plan.model_validate(brief_data)
    plan = load_plan(ROOT / "plans" / "mild.yaml").plan

    for key in ("id", "name", "version", "procedure", "languages", "sms_caps"):
        assert getattr(brief, key) == getattr(plan, key), key
    for key in brief_data["defaults"]:
        assert getattr(brief.defaults, key) == getattr(plan.defaults, key), key
    for step in brief.steps:  # the brief leaves out the descriptions
        assert step == plan.step(step.id).model_copy(update={"description": None}), step.id


def test_the_postgresql_skip_message_names_the_database_used() -> None:
    message = how_to_run_postgres("postgresql+psycopg://postgres@db.example:5433/reminders_ci")

    assert "postgresql+psycopg://postgres@db.example:5433/reminders_ci" in message
    assert "the database 'reminders_ci'" in message
