"""The mapping file is checked like a plan file: every problem as file:line with its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from feed_fixtures import MAPPING
from typer.testing import CliRunner

from reminders.cli.main import app
from reminders.integrations.mapping import Code, MappingError, load_mapping, parse_mapping


def problems(text: str, plan_ids: list[str] | None = None) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "scheduling.yaml", plan_ids)
    return [str(problem) for problem in caught.value.problems]


def test_the_example_mapping_is_valid_and_matches_codes_with_their_system() -> None:
    mapping = parse_mapping(MAPPING, "scheduling.yaml", ["demo"])

    assert mapping.rule_for([Code(system="C4", code="0275T")], None) is not None
    assert mapping.rule_for([Code(system="L", code="0275T")], None) is None


def test_an_unknown_time_zone_is_reported_at_its_line() -> None:
    text = MAPPING.replace("timezone: America/Denver", "timezone: Mountain/Time")

    assert problems(text) == [
        "scheduling.yaml:7: sites[1].timezone: unknown IANA time zone 'Mountain/Time' "
        "(e.g. America/Chicago)"
    ]


def test_a_misspelt_key_gets_a_suggestion_from_the_mapping_keys() -> None:
    text = MAPPING.replace("refusals: AE", "refusal: AE")

    (problem,) = problems(text)
    assert problem.startswith("scheduling.yaml:14: refusal: unknown key 'refusal'; did you mean")
    assert "'refusals'" in problem


def test_a_rule_naming_a_plan_that_does_not_exist_is_reported_at_its_line() -> None:
    assert problems(MAPPING, ["mild"]) == [
        "scheduling.yaml:16: rules[0].plan: no plan 'demo' (plans: mild)"
    ]


def test_a_consent_rule_is_required_and_limited_to_known_choices() -> None:
    text = MAPPING.replace("consent: {sms: granted}", "consent: {sms: maybe}")

    (problem,) = problems(text)
    assert problem.startswith("scheduling.yaml:10: consent.sms:")
    assert "'granted', 'refused' or 'if_mobile'" in problem


def test_hl7_check_prints_each_problem_and_exits_non_zero(tmp_path: Path) -> None:
    broken = tmp_path / "scheduling.yaml"
    broken.write_text(MAPPING.replace("refusals: AE", "refusals: AX"))

    result = CliRunner().invoke(app, ["hl7", "check", str(broken)])

    assert result.exit_code == 1
    assert f"error: {broken}:14: refusals:" in result.stderr


def test_a_missing_mapping_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(tmp_path / "missing.yaml")

    assert str(caught.value).endswith("missing.yaml: file: cannot read: No such file or directory")


def test_the_shipped_mapping_file_is_valid_for_the_shipped_plans() -> None:
    root = Path(__file__).resolve().parents[1]

    mapping = load_mapping(root / "integrations" / "scheduling.yaml", ["mild"])

    assert mapping.rule_for([Code(system="C4", code="0275T")], "ASC-OR1") is not None
