"""The small chaos run: three dispatcher processes on PostgreSQL, killed at random, against the
Twilio stand-in (its own process) that answers a share of sends with 500-after-create, 429 and
timeouts, while patients text STOP and procedures move. Counted from what Twilio created."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.chaos import run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_every_text_goes_once_or_has_a_reason_and_no_patient_goes_over_the_cap(
    postgres_url: str, tmp_path: Path
) -> None:
    figures = run_chaos(
        postgres_url, tmp_path, patients=40, workers=3, kills=3, kill_every=1.5, event_share=0.1
    )

    assert figures.problems == dict.fromkeys(figures.problems, 0), figures
    assert figures.kills == 3
    assert figures.opt_outs == figures.reschedules == 4
    assert sum(figures.faults.values()) > 0  # faults were injected
    assert figures.created > 0
    assert sum(figures.statuses.values()) >= figures.messages
