"""`scripts/module_report.py REV` reads the package at a git revision, not the working tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scripts.module_report import ROOT, main, sources_at


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout.decode()


def test_the_files_at_a_revision_are_those_git_holds_there() -> None:
    at_head = sources_at("HEAD")

    listed = _git("ls-tree", "-r", "--name-only", "HEAD", "--", "reminders").splitlines()
    assert sorted(at_head) == sorted(p for p in listed if p.endswith(".py"))
    assert at_head["reminders/clock.py"] == _git("show", "HEAD:reminders/clock.py")


def test_the_report_names_the_revision_its_largest_modules_and_its_graph(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["HEAD", "--top", "3"])
    out = capsys.readouterr().out

    head = _git("rev-parse", "--short", "HEAD").strip()
    assert out.startswith(f"reminders/ at {head} ")
    largest = out.split("Largest modules (lines), top 3:\n")[1].splitlines()[:3]
    sizes = [int(row.split()[0]) for row in largest]
    assert sizes == sorted(sizes, reverse=True)
    assert all(Path(ROOT, row.split()[1]).suffix == ".py" for row in largest)
    assert "\n  store -> " in out
    assert "\n  cli -> " in out
