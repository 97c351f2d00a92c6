"""`benchmarks/bench_dispatch.py --database-url URL` runs with the Twilio stand-in (its
recording file was once named after the URL, slashes included, and the stand-in never started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import POSTGRES_URL

from benchmarks import bench_dispatch

pytestmark = pytest.mark.slow  # spawns worker processes and the stand-in


def run_bench(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    bench_dispatch.main(
        ["--database-url", url, "--channels", "twilio", "--twilio-messages", "20", "--workers", "1"]
    )
    return capsys.readouterr().out


@pytest.mark.postgres
def test_a_postgresql_url_with_the_twilio_stand_in(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # postgres_url only checks the server is there; the benchmark makes its own schema.
    out = run_bench(POSTGRES_URL, capsys)

    assert "'postgresql', 'twilio', 1, 20," in out
    assert "each sent once" in out


def test_a_sqlite_url_with_the_twilio_stand_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_bench(f"sqlite:///{tmp_path / 'bench.sqlite3'}", capsys)

    assert "'sqlite', 'twilio', 1, 20," in out
    assert "each sent once" in out
