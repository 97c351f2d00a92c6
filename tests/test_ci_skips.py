"""Under CI=true a skipped PostgreSQL or browser test fails the run; elsewhere it is a skip."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING_TESTS = """
import pytest

@pytest.mark.postgres
def test_needs_postgres():
    pytest.skip("PostgreSQL is not reachable")

@pytest.mark.browser
def test_needs_browser(chromium_path):
    pass

def test_optional():
    pytest.skip("nothing to see")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A small suite with the project's plugin, and no Chromium on PATH."""
    pytester.makeconftest('pytest_plugins = ["reminders.testing.pytest_plugin"]')
    pytester.makeini("[pytest]\nmarkers =\n    postgres: x\n    browser: x\n")
    pytester.makepyfile(test_skips=SKIPPING_TESTS)
    monkeypatch.setenv("PATH", str(pytester.path))
    return pytester


def test_marked_skips_fail_under_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-rA")
    result.assert_outcomes(failed=1, errors=1, skipped=1)  # a fixture skips in setup
    result.stdout.fnmatch_lines(
        [
            "*CI=true: a postgres test may not be skipped; it was: PostgreSQL is not reachable*",
            "*CI=true: a browser test may not be skipped; it was: *bash scripts/test.sh*",
        ]
    )


def test_marked_skips_stay_skips_outside_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*the browser tests need Chromium and Playwright*"])
