"""`benchmarks/peers.py` at a tiny size, so it does not rot: our dispatcher, PgQueuer and
procrastinate each drain 30 jobs, twice, on the local PostgreSQL, and the peers' schemas are
dropped after."""

from __future__ import annotations

import subprocess

import pytest

from benchmarks import peers

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_each_peer_and_ours_drain_30_jobs_twice(
    postgres_url: str, bench_schemas_dropped: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The peers' virtualenv lives at the repository root (git-ignored), as when run by hand.
    try:
        peers.peer_python(peers.DEFAULT_VENV)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"the peers' virtualenv could not be installed (no package index?): {exc}")
    peers.main(["--jobs", "30", "--runs", "2"])  # the second run starts with the next system

    out = capsys.readouterr().out
    table = out[out.index("peers: 30 no-op jobs each") :]
    assert "median (min–max) of 2 run(s)" in table
    for system, setting in (
        ("reminders (ours)", "null channel, 1 worker"),
        ("PgQueuer", "batch 10 (default)"),
        ("PgQueuer", "batch 1"),
        ("procrastinate", "concurrency 1"),
        ("procrastinate", "concurrency 10"),
    ):
        assert any(system in line and setting in line for line in table.splitlines()), system
