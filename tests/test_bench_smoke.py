"""The import benchmark (through the CsvImport service) and the APScheduler baseline (with
SQLite's defaults and with our settings) at tiny sizes, so they do not rot."""

from __future__ import annotations

import re

import pytest
from conftest import POSTGRES_URL

from benchmarks import baseline_apscheduler, bench_import

pytestmark = pytest.mark.slow  # spawns processes, runs schedulers for a few seconds


@pytest.mark.postgres
def test_the_import_goes_through_the_csv_service_on_both_databases(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_import.main(["--patients", "30", "--runs", "2", "--database-url", POSTGRES_URL])
    bench_import.main(["--patients", "30", "--runs", "1", "--sqlite-only"])

    out = capsys.readouterr().out
    assert "import through CsvImport: 30 patients" in out
    assert "median (min–max) of 2 run(s)" in out
    # every table says how fast the machine was, so figures from other days can be compared
    assert re.search(r"machine: \d+ cores; a 5,000,000-step Python loop takes \d+\.\d{3} s", out)
    rows = [line.split() for line in out.splitlines() if "{" not in line]
    for database in ("postgresql", "sqlite"):
        # every patient imported (the benchmark raises otherwise), 13 messages each on average
        assert any(row[:2] == [database, "30"] for row in rows), database


def test_the_baseline_runs_with_sqlite_defaults_and_with_our_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    baseline_apscheduler.main(
        [
            "--patients",
            "10",
            "--messages",
            "40",
            "--lateness-messages",
            "10",
            "--start-in",
            "1",
            "--spread",
            "1",
            "--runs",
            "1",
        ]
    )

    out = capsys.readouterr().out
    table = out[out.index("ours vs one APScheduler job per message") :]
    assert "baseline, APScheduler's defaults (DELETE, FULL)" in table
    assert "baseline, our settings (WAL, NORMAL)" in table
    for figure in ("import, messages/s", "dispatch, msg/s", "lateness p99, s"):
        assert figure in table
