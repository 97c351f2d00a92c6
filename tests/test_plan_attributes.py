"""Patient attributes declared by the plan: `plans check` reads every `when:` against them, and
enrollment refuses an unknown name (with the nearest one) or a value the type does not take
(with the values allowed), through the CLI, a CSV file, the HTTP API and the HL7 feed alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_fixtures import World
from entry_points import cli_env
from feed_fixtures import MAPPING, open_feed, siu
from test_cli import PLAN, enroll, run, run_json, write_csv, write_plan

from reminders.integrations.mapping import MappingError
from reminders.plans.attributes import AttributeDeclaration, AttributeType, read_attributes

UNKNOWN = "unknown attribute; did you mean takes_blood_thinners? (declared: takes_blood_thinners)"
MAYBE = "'maybe' is not allowed: expected yes or no"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(tmp_path, monkeypatch)


# -- the declarations ------------------------------------------------------------------------


def test_values_are_read_by_type_and_stored_typed() -> None:
    declared = {
        "on_thinners": AttributeDeclaration(type=AttributeType.YES_NO, description="d"),
        "pain": AttributeDeclaration(type=AttributeType.NUMBER, description="d"),
        "side": AttributeDeclaration(
            type=AttributeType.ONE_OF, values=["left", "right"], description="d"
        ),
    }

    typed, problems = read_attributes(declared, {"on_thinners": "Yes", "pain": "7", "side": "LEFT"})

    assert (typed, problems) == ({"on_thinners": True, "pain": 7, "side": "left"}, {})
    _, bad = read_attributes(declared, {"pain": "nan", "side": "up", "sides": "left"})
    assert bad == {
        "pain": "'nan' is not allowed: expected a number, e.g. 3 or 2.5",
        "side": "'up' is not allowed: expected one of left, right",
        "sides": "unknown attribute; did you mean side? (declared: on_thinners, pain, side)",
    }


def test_a_plan_without_declarations_takes_any_attribute_as_before() -> None:
    assert read_attributes({}, {"anything": "x"}) == ({"anything": "x"}, {})


# -- plans check --------------------------------------------------------------------------------


def check(env: dict[str, str], tmp_path: Path, plan: str) -> tuple[int, list[str]]:
    write_plan(tmp_path, plan)
    result = run(env, "plans", "check")
    return result.exit_code, result.stdout.splitlines()


def test_plans_check_names_a_misspelt_when_at_its_line(env: dict[str, str], tmp_path: Path) -> None:
    plan = PLAN.replace("when: {takes_blood_thinners: true}", "when: {takes_blood_thinner: true}")

    code, lines = check(env, tmp_path, plan)

    line = plan.splitlines().index("    when: {takes_blood_thinner: true}") + 1
    assert code == 1
    assert f"knee.yaml:{line}: steps[1].when.takes_blood_thinner: {UNKNOWN}" in "\n".join(lines)


def test_plans_check_refuses_a_when_value_the_type_does_not_take(
    env: dict[str, str], tmp_path: Path
) -> None:
    plan = PLAN.replace("when: {takes_blood_thinners: true}", "when: {takes_blood_thinners: maybe}")

    code, lines = check(env, tmp_path, plan)

    assert code == 1
    assert any(line.endswith(f"steps[1].when.takes_blood_thinners: {MAYBE}") for line in lines)


def test_plans_check_warns_about_a_when_in_a_plan_without_declarations(
    env: dict[str, str], tmp_path: Path
) -> None:
    start = PLAN.index("attributes:")
    plan = PLAN[:start] + PLAN[PLAN.index("steps:") :]

    code, lines = check(env, tmp_path, plan)

    assert code == 0
    assert any(
        "steps[1].when.takes_blood_thinners: warning: 'takes_blood_thinners' is not declared"
        in line
        for line in lines
    )


def test_plans_check_and_apply_list_enrolled_patients_that_no_longer_fit(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert enroll(env, "--attr", "takes_blood_thinners=yes").exit_code == 0
    assert enroll(env, external_id="p2").exit_code == 0
    renamed = PLAN.replace("version: 1", "version: 2").replace(
        "takes_blood_thinners", "on_blood_thinners"
    )

    code, lines = check(env, tmp_path, renamed)
    applied = run_json(env, "plans", "apply", "knee", "--yes")

    assert code == 0
    unknown = "unknown attribute; did you mean on_blood_thinners? (declared: on_blood_thinners)"
    expected = f"enrolled patient p1 does not fit: takes_blood_thinners: {unknown}"
    assert any(line.endswith(f"attributes: warning: {expected}") for line in lines)
    assert applied["misfits"] == [f"p1: attributes.takes_blood_thinners: {unknown}"]
    assert applied["enrollments"] == 1  # p2 moved to v2; p1 stays as it was


# -- every entry point --------------------------------------------------------------------------


def test_cli_refuses_a_misspelt_attribute_and_a_wrong_value(env: dict[str, str]) -> None:
    misspelt = enroll(env, "--attr", "takes_blood_thinner=true")
    wrong = enroll(env, "--attr", "takes_blood_thinners=maybe")

    assert misspelt.exit_code == wrong.exit_code == 2
    assert misspelt.stderr.strip() == f"error: attributes.takes_blood_thinner: {UNKNOWN}"
    assert wrong.stderr.strip() == f"error: attributes.takes_blood_thinners: {MAYBE}"
    assert run(env, "timeline", "p1").exit_code == 1


def test_csv_names_the_attribute_column_and_keeps_the_other_rows(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "patients.csv",
        "c1,Ann,202-555-0111,,America/New_York,en,sms,yes,knee,2030-03-12,07:30,maybe",
        "c2,Bob,312-555-0112,,America/Chicago,en,sms,yes,knee,2030-03-14,,no",
    )

    result = run(env, "import", str(csv_file), "--json")

    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["problems"] == [
        {"line": 2, "field": "attr_takes_blood_thinners", "message": MAYBE}
    ]
    assert report["created"] == 1


def test_csv_a_misspelt_attribute_column_is_refused_with_the_nearest_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "patients.csv",
        "c1,Ann,202-555-0111,,America/New_York,en,sms,yes,knee,2030-03-12,07:30,yes",
    )
    csv_file.write_text(
        csv_file.read_text().replace("attr_takes_blood_thinners", "attr_takes_blood_thinner")
    )

    report = json.loads(run(env, "import", str(csv_file), "--json").stdout)

    assert report["problems"] == [
        {"line": 2, "field": "attr_takes_blood_thinner", "message": UNKNOWN}
    ]


def test_api_refuses_attributes_the_plan_does_not_declare(world: World) -> None:
    response = world.enroll("ana", "+12025550143", attributes={"takes_blood_thinner": True})

    assert response.status_code == 422
    assert response.json()["fields"] == [
        {
            "field": "attributes.takes_blood_thinner",
            "message": "unknown attribute; did you mean takes_blood_thinners? "
            "(declared: takes_blood_thinners)",
        }
    ]


def test_api_refuses_a_value_the_type_does_not_take(world: World) -> None:
    response = world.enroll("ana", "+12025550143", attributes={"takes_blood_thinners": "maybe"})

    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "attributes.takes_blood_thinners", "message": MAYBE}
    ]


def test_hl7_a_mapping_attribute_the_plan_does_not_declare_stops_the_feed_at_its_line(
    tmp_path: Path,
) -> None:
    mapping = MAPPING.replace("{takes_blood_thinners: false}", "{takes_blood_thinner: false}")
    url = f"sqlite:///{tmp_path / 'feed.sqlite3'}"

    with pytest.raises(MappingError) as caught, open_feed(tmp_path, url, mapping):
        pass

    line = mapping.splitlines().index("  attributes: {takes_blood_thinner: false}") + 1
    assert [str(problem) for problem in caught.value.problems] == [
        f"{tmp_path / 'integrations' / 'scheduling.yaml'}:{line}: "
        f"defaults.attributes.takes_blood_thinner: plan demo: {UNKNOWN}"
    ]


def test_hl7_a_declared_mapping_attribute_enrolls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feed.sqlite3'}"
    with open_feed(tmp_path, url) as feed:
        reply = feed.handler.handle(siu())

        assert reply.ack_code == "AA"
        assert feed.enrollment("MRN1")["attributes"] == {"takes_blood_thinners": False}
