"""The Twilio stand-in as its own process, with the command-line modes a test asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StandInProcess:
    """Where the stand-in listens, and the files it records created messages and faults in."""

    url: str
    record: Path
    fault_log: Path

    def created(self) -> list[dict[str, Any]]:
        """Every message the stand-in created, from its record (complete lines only)."""
        return _lines(self.record)

    def faults(self) -> list[str]:
        """Every fault the stand-in played, in order."""
        return [line["fault"] for line in _lines(self.fault_log)]


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


@contextmanager
def standin_process(folder: Path, *flags: str) -> Iterator[StandInProcess]:
    """Run `python -m reminders.testing.twilio_standin` with `flags` until the block ends."""
    record, fault_log = folder / "twilio.jsonl", folder / "faults.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reminders.testing.twilio_standin",
            "--record",
            str(record),
            "--fault-log",
            str(fault_log),
            *flags,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        yield StandInProcess(process.stdout.readline().strip(), record, fault_log)
    finally:
        process.terminate()
        process.wait(timeout=10)
