"""The layer picture of docs/architecture.md holds: no import in `reminders/` goes upward."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.module_report import cycles, imports_of, is_checked, package_graph, unit_of

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DEV_ONLY = {
    "pytest",
    "hypothesis",
    "freezegun",
    "aiosmtpd",
    "openapi_core",
    "schemathesis",
    "jsonschema",
}
DEV_ONLY_ALLOWED_IN = {"reminders/testing/pytest_plugin.py"}  # loaded by pytest only


@dataclass(frozen=True)
class Violation:
    """One import that breaks the picture."""

    path: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported} ({self.why})"


def read_layers(document: Path = ARCHITECTURE) -> list[list[str]]:
    """The layers, highest first, from the document's ```layers block."""
    match = re.search(r"```layers\n(.*?)```", document.read_text(encoding="utf-8"), re.S)
    assert match, f"{document} has no ```layers block"
    return [line.split() for line in match.group(1).splitlines() if line.strip()]


def check(source_root: Path, layers: list[list[str]]) -> list[Violation]:
    """Every upward import and every dev-only import under source_root/reminders."""
    rank = {name: depth for depth, layer in enumerate(layers) for name in layer}
    violations = []
    for rel, source in _sources(source_root).items():
        own = unit_of(rel)
        for line, module in imports_of(source, rel):
            top = module.split(".")[0]
            if top in DEV_ONLY and rel not in DEV_ONLY_ALLOWED_IN:
                violations.append(Violation(rel, line, module, "dev-only dependency"))
            names = module.split(".")
            if top != "reminders" or len(names) < 2 or own is None:
                continue
            target = names[1]
            if target == own or own not in rank or target not in rank:
                continue
            if rank[target] < rank[own]:
                why = f"{own} may not import {target}, a higher layer"
                violations.append(Violation(rel, line, module, why))
    return violations


def _sources(source_root: Path) -> dict[str, str]:
    """The package's checked files under source_root (path relative to it -> text)."""
    found = {}
    for path in sorted((source_root / "reminders").rglob("*.py")):
        rel = path.relative_to(source_root).as_posix()
        if is_checked(rel):
            found[rel] = path.read_text(encoding="utf-8")
    return found


def _units(source_root: Path) -> set[str]:
    package_root = source_root / "reminders"
    names = {p.stem for p in package_root.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in package_root.iterdir() if (p / "__init__.py").exists()}
    return names


def test_every_import_in_the_package_follows_the_layers() -> None:
    violations = check(ROOT, read_layers())

    assert violations == [], "\n".join(map(str, violations))


def test_the_layers_name_every_module_of_the_package_and_nothing_else() -> None:
    named = [name for layer in read_layers() for name in layer]

    assert len(named) == len(set(named)), "a module is named in two layers"
    assert set(named) == _units(ROOT)


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "reminders", tmp_path / "reminders", ignore=shutil.ignore_patterns("*.pyc")
    )
    return tmp_path


def test_an_import_from_the_core_into_the_store_is_reported(package_copy: Path) -> None:
    schedule = package_copy / "reminders" / "schedule.py"
    schedule.write_text(
        schedule.read_text(encoding="utf-8") + "\nfrom reminders.store.storage import Storage\n",
        encoding="utf-8",
    )

    violations = check(package_copy, read_layers())

    assert [(v.path, v.imported) for v in violations] == [
        ("reminders/schedule.py", "reminders.store.storage")
    ]
    assert "schedule may not import store" in str(violations[0])


def test_a_relative_upward_import_is_reported(package_copy: Path) -> None:
    model = package_copy / "reminders" / "plans" / "model.py"
    model.write_text(
        model.read_text(encoding="utf-8") + "\nfrom ..schedule import PlannedMessage\n",
        encoding="utf-8",
    )

    violations = check(package_copy, read_layers())

    assert [(v.path, v.imported) for v in violations] == [
        ("reminders/plans/model.py", "reminders.schedule")
    ]


def test_a_dev_only_dependency_in_package_code_is_reported(package_copy: Path) -> None:
    clock = package_copy / "reminders" / "clock.py"
    clock.write_text(clock.read_text(encoding="utf-8") + "\nimport freezegun\n", encoding="utf-8")

    violations = check(package_copy, read_layers())

    assert [(v.path, v.why) for v in violations] == [("reminders/clock.py", "dev-only dependency")]


def test_no_modules_or_packages_import_each_other_round_a_loop() -> None:
    graph = package_graph(_sources(ROOT))

    found = cycles({unit: targets.keys() for unit, targets in graph.items()})

    assert found == [], "\n".join(
        f"{unit} -> {target}: {graph[unit][target][0]}"
        for group in found
        for unit in group
        for target in sorted(set(graph[unit]) & set(group))
    )


def test_the_fhir_endpoints_may_not_import_the_api_that_mounts_them(package_copy: Path) -> None:
    routes = package_copy / "reminders" / "integrations" / "fhir" / "routes.py"
    routes.write_text(
        routes.read_text(encoding="utf-8") + "\nfrom reminders.api.auth import require_scope\n",
        encoding="utf-8",
    )

    violations = check(package_copy, read_layers())
    graph = package_graph(_sources(package_copy))

    assert [(v.path, v.imported) for v in violations] == [
        ("reminders/integrations/fhir/routes.py", "reminders.api.auth")
    ]
    assert "integrations may not import api" in str(violations[0])
    assert cycles({unit: targets.keys() for unit, targets in graph.items()}) == [
        ["api", "integrations"]
    ]


def test_a_loop_through_three_units_is_one_cycle() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["d"]}

    assert cycles(graph) == [["a", "b", "c"]]
