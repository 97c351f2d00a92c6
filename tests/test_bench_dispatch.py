"""`benchmarks/bench_dispatch.py` at a tiny size, so it does not rot: both workloads, both
databases, and `--database-url URL` with the Twilio stand-in (its recording file was once named
after the URL, slashes included, and the stand-in never started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import POSTGRES_URL

from benchmarks import bench_dispatch

pytestmark = pytest.mark.slow  # spawns worker processes and the stand-in


def run_bench(url: str, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    bench_dispatch.main(["--database-url", url, "--workers", "1", "--runs", "1", *options])
    return capsys.readouterr().out


def twilio_both_workloads(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    return run_bench(url, capsys, "--channels", "twilio", "--twilio-messages", "40")


@pytest.mark.postgres
def test_a_postgresql_url_with_the_twilio_stand_in(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # postgres_url only checks the server is there; the benchmark makes its own schema.
    out = twilio_both_workloads(POSTGRES_URL, capsys)

    assert "['postgresql', 'twilio', 1, 40, 'now'," in out
    assert "'each sent once']" in out
    # 1 in 10 patients of the day waits for a cap (one in 20 daily, one in 20 weekly)
    assert "['postgresql', 'twilio', 1, 40, 'day'," in out
    assert "4 deferred, 36 sent" in out
    assert "'each sent or deferred once']" in out
    assert "day ÷ now" in out


def test_a_sqlite_url_with_the_twilio_stand_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = twilio_both_workloads(f"sqlite:///{tmp_path / 'bench.sqlite3'}", capsys)

    assert "['sqlite', 'twilio', 1, 40, 'now'," in out
    assert "'each sent once']" in out
    assert "4 deferred, 36 sent" in out
    assert "'each sent or deferred once']" in out


@pytest.mark.postgres
def test_the_realistic_day_with_the_null_channel_and_two_runs(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_bench(
        POSTGRES_URL, capsys, "--channels", "null", "--messages", "60", "--workload", "day"
    )
    out += run_bench(POSTGRES_URL, capsys, "--channels", "null", "--messages", "60", "--runs", "2")

    assert out.count("'each sent or deferred once']") == 3
    assert "6 deferred, 54 sent" in out
    assert "median (min–max) of 2 run(s)" in out


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_workers_share_the_realistic_day_and_send_each_once(
    database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """The workers move their clocks to each wave together: one that jumped an hour ahead alone
    took the other's claims in progress for abandoned and sent them again (18,009 of 18,000)."""
    if database == "postgresql":
        request.getfixturevalue("postgres_url")  # the server is there; the bench makes a schema
    url = POSTGRES_URL if database == "postgresql" else f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    out = run_bench(url, capsys, "--channels", "null", "--messages", "60", "--workload", "day")
    out += run_bench(
        url, capsys, "--channels", "null", "--messages", "60", "--workload", "day", "--workers", "2"
    )

    assert f"['{database}', 'null', 2, 60, 'day'," in out
    assert out.count("'each sent or deferred once']") == 2
    assert out.count("6 deferred, 54 sent") == 2
    assert "CHECK FAILED" not in out


def test_both_workloads_and_both_channels_mean_each_and_unknown_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    out = run_bench(url, capsys, "--channels", "null", "--messages", "20", "--workload", "both")

    assert "['sqlite', 'null', 1, 20, 'now'," in out
    assert "['sqlite', 'null', 1, 20, 'day'," in out
    assert "'both'" not in out
    for option, value in (("--workload", "all"), ("--channels", "sms")):
        with pytest.raises(SystemExit) as refused:
            run_bench(url, capsys, option, value)
        assert refused.value.code == 2
        assert f"{option}: unknown '{value}'" in capsys.readouterr().err
