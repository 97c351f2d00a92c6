"""`benchmarks/bench_hl7.py` at a tiny size, so it does not rot: SIU messages over one MLLP
connection on SQLite (`--sqlite-only`) and on PostgreSQL (`--database-url`), each run on a
fresh database whose schema is dropped afterwards."""

from __future__ import annotations

import ast
import re
from collections import Counter

import pytest
from conftest import POSTGRES_URL

from benchmarks import bench_hl7

pytestmark = pytest.mark.slow  # thousands of statements through the real listener


def expected_outcomes(count: int) -> dict[str, int]:
    """What the mix of `count` messages becomes: S12 enrolls, S13 moves, S15 cancels."""
    events = Counter(message.split("|")[8].split("^")[1] for message in bench_hl7.messages(count))
    return {"enrolled": events["S12"], "moved": events["S13"], "cancelled": events["S15"]}


def check(out: str, database: str, count: int, runs: int) -> None:
    for run in range(1, runs + 1):
        line = re.search(rf"^{database} run {run}: .* outcomes (\{{.*\}})$", out, re.M)
        assert line is not None, out
        assert ast.literal_eval(line.group(1)) == expected_outcomes(count)
    row = re.search(rf"^\s*{database}\s+{count}\s+{runs}\s+\d+\s+[\d.]+\s+[\d.]+\s+0$", out, re.M)
    assert row is not None, out  # the table: msg/s, ACK p50/p99, none answered other than AA


def test_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    bench_hl7.main(["--messages", "40", "--runs", "2", "--sqlite-only"])

    check(capsys.readouterr().out, "sqlite", 40, 2)


@pytest.mark.postgres
def test_postgresql_in_a_schema_dropped_afterwards(
    postgres_url: str, bench_schemas_dropped: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # postgres_url only checks the server is there; the benchmark makes its own schema, and
    # bench_schemas_dropped checks it is gone afterwards.

    bench_hl7.main(["--messages", "40", "--runs", "1", "--database-url", POSTGRES_URL])

    check(capsys.readouterr().out, "postgresql", 40, 1)
