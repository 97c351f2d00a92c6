"""Pytest plugin for the project's tests: skips CI may not accept, and where Chromium is.

Tests marked `postgres` or `browser` are skipped, with a message saying how to run them, where
the server or the browser is missing. Under CI (`CI=true`) such a skip fails the test instead, so
a green CI run means they ran. Browser tests take the `chromium_path` fixture and hand it to
Playwright as `executable_path` (Debian's Chromium; Playwright downloads no browser here).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Generator

import pytest

MARKERS_CI_RUNS = ("postgres", "browser")
HOW_TO_RUN_BROWSER = (
    "the browser tests need Chromium and Playwright: run `bash scripts/test.sh` as root (it "
    "installs Debian's chromium and the project's browser extra), or `apt-get install chromium` "
    "and then `bash scripts/setup.sh --dev --browser`"
)


def running_under_ci() -> bool:
    """True where the CI environment variable says so (CI=true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def chromium_executable() -> str | None:
    """Debian's Chromium where it is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Chromium's path for Playwright; skips the test, saying how to run it, without either."""
    path = chromium_executable()
    if path is None or importlib.util.find_spec("playwright") is None:
        pytest.skip(HOW_TO_RUN_BROWSER)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI, turn the skip of a postgres- or browser-marked test into a failure."""
    report = yield
    if not report.skipped or hasattr(report, "wasxfail") or not running_under_ci():
        return report
    marks = [name for name in MARKERS_CI_RUNS if item.get_closest_marker(name)]
    if not marks:
        return report
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"CI=true: a {'/'.join(marks)} test may not be skipped; it was: {reason}"
    return report
