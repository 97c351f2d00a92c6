"""CSV rows -> enrollment input: line numbers, attr_ columns, header and row problems."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import write_plan

from reminders.catalog import PlanCatalog
from reminders.csv_import import (
    CsvImport,
    ImportSummary,
    ParsedRows,
    SeenRows,
    Validate,
    batched,
    parse_rows,
    read_rows,
    row_data,
)
from reminders.enrollment import EnrollmentService
from reminders.errors import EnrollmentError
from reminders.gc_pause import BULK_GC_THRESHOLD
from reminders.schedule_diff import ChangeAction, ScheduleChange
from reminders.store.records import EnrollmentOutcome
from reminders.store.storage import Storage

HEADER = "external_id,first_name,phone,email,timezone,plan,procedure_date,attr_takes_blood_thinners"


@pytest.fixture
def service(storage: Storage, tmp_path: Path) -> EnrollmentService:
    """The enrollment service with the knee plan (consent to texts by default)."""
    plans, templates = write_plan(tmp_path)
    plan = plans / "knee.yaml"
    plan.write_text(plan.read_text().replace("defaults:\n", "defaults:\n  sms_consent: true\n"))
    return EnrollmentService(storage, PlanCatalog(plans, templates))


@pytest.fixture
def validate(service: EnrollmentService) -> Validate:
    """The enrollment service's validation."""
    return service.validate


def rows(text: str) -> list[Any]:
    return list(read_rows(text))


def test_rows_carry_their_file_line_with_the_header_as_line_1() -> None:
    text = "\n".join(
        [
            HEADER,
            "a1,Ann,202-555-0111,,America/New_York,knee,2030-03-12,yes",
            "",
            'a2,"Bob\nBobson",202-555-0112,,America/Chicago,knee,2030-03-12,',
            "a3,Cat,202-555-0113,,America/Denver,knee,2030-03-12,",
        ]
    )

    assert [(row.line, row.values["external_id"]) for row in rows(text)] == [
        (2, "a1"),
        (4, "a2"),
        (6, "a3"),
    ]


def test_attr_columns_become_attributes_and_blank_cells_are_left_out() -> None:
    data = row_data(
        {
            "external_id": "a1",
            "phone": " ",
            "email": "ann@example.org",
            "attr_takes_blood_thinners": "yes",
            "attr_takes_nsaids": "",
        },
    )

    assert data == {
        "external_id": "a1",
        "email": "ann@example.org",
        "attributes": {"takes_blood_thinners": "yes"},
    }


def test_a_header_without_required_columns_is_refused_as_line_1() -> None:
    with pytest.raises(EnrollmentError) as caught:
        rows("external_id,first_name,phone\na1,Ann,202-555-0111\n")

    assert caught.value.row == 1
    assert [p.field for p in caught.value.problems] == ["timezone", "plan", "procedure_date"]


def test_an_unknown_column_is_refused_with_a_hint() -> None:
    with pytest.raises(EnrollmentError) as caught:
        rows(HEADER + ",blood_thinners\n")

    [problem] = caught.value.problems
    assert problem.field == "blood_thinners"
    assert "attr_<name>" in problem.message


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(EnrollmentError, match="empty"):
        rows("")


def test_bad_rows_are_reported_by_line_and_field_while_good_rows_pass(validate: Validate) -> None:
    text = "\n".join(
        [
            HEADER,
            "a1,Ann,202-555-0111,,America/New_York,knee,2030-03-12,yes",
            "a2,Bob,12,,America/Chicago,knee,2030-03-12,",
            "a3,Cat,202-555-0113,,Nowhere/Town,knee,2030-03-32,",
            "a4,Dan,202-555-0114,,America/Denver,knee,2030-03-12,,surplus",
        ]
    )

    parsed = parse_rows(rows(text), validate, SeenRows())

    assert [v.item.external_id for v in parsed.valid] == ["a1"]
    assert parsed.valid[0].item.attributes == {"takes_blood_thinners": "yes"}
    assert parsed.rejected_lines == [3, 4, 5]
    assert [(p.line, p.field) for p in parsed.problems] == [
        (3, "phone"),
        (4, "timezone"),
        (4, "procedure_date"),
        (5, "row"),
    ]
    assert str(parsed.problems[0]).startswith("line 3: phone: not a valid phone number")


def test_a_patient_listed_twice_for_a_plan_is_refused_on_the_later_line(
    validate: Validate,
) -> None:
    row = "a1,Ann,202-555-0111,,America/New_York,knee,2030-03-12,"
    seen = SeenRows()
    first, second = batched(rows("\n".join([HEADER, row, row, row])), size=2)

    parse_rows(first, validate, seen)
    later = parse_rows(second, validate, seen)

    assert (seen.first_line("a1", "knee"), len(seen)) == (2, 1)
    assert seen.first_line("a1", "hip") is None
    assert [(p.line, p.message) for p in later.problems] == [(4, "'a1' is already on line 2")]


def test_the_summary_counts_created_updated_unchanged_and_rejected() -> None:
    def outcome(created: bool, *actions: ChangeAction) -> EnrollmentOutcome:
        changes = [ScheduleChange("s", action, None, None) for action in actions]
        return EnrollmentOutcome("x", 1, 1, created, changes)

    summary = ImportSummary()
    summary.add(
        [
            outcome(True, ChangeAction.ADD),
            outcome(False, ChangeAction.KEEP, ChangeAction.MOVE),
            outcome(False, ChangeAction.KEEP),
        ],
        ParsedRows(valid_lines=[2, 3, 4], rejected_lines=[7, 9]),
    )

    assert summary.counts() == {"created": 1, "updated": 1, "unchanged": 1, "rejected": 2}


def test_batches_hold_at_most_the_batch_size() -> None:
    many = rows(
        "\n".join([HEADER] + [f"a{i},Ann,202-555-0111,,UTC,knee,2030-03-12," for i in range(2500)])
    )

    assert [len(batch) for batch in batched(many, 1000)] == [1000, 1000, 500]


GOOD_ROWS = [
    "a1,Ann,202-555-0111,,America/New_York,knee,2030-03-12,yes",
    "a2,Bob,202-555-0112,,America/Chicago,knee,2030-03-12,no",
]


def test_an_import_collects_garbage_less_often_then_restores_the_setting(
    service: EnrollmentService, gc_threshold: tuple[int, int, int]
) -> None:
    during: list[tuple[int, int, int]] = []
    data = "\n".join([HEADER, *GOOD_ROWS]).encode()

    summary = CsvImport(service, batch_size=1).run(
        data, progress=lambda done, total: during.append(gc.get_threshold())
    )

    assert summary.created == 2
    raised = (max(gc_threshold[0], BULK_GC_THRESHOLD), *gc_threshold[1:])
    assert during == [raised, raised]
    assert gc.get_threshold() == gc_threshold


def test_a_failed_import_restores_the_setting(
    service: EnrollmentService, gc_threshold: tuple[int, int, int]
) -> None:
    def interrupted(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CsvImport(service).run("\n".join([HEADER, *GOOD_ROWS]).encode(), progress=interrupted)

    assert gc.get_threshold() == gc_threshold
