"""Peers: PgQueuer and procrastinate drain N no-op jobs on the same PostgreSQL as our dispatcher.

In each run, on one PostgreSQL server, each system gets a fresh schema (dropped afterwards), N
jobs enqueued and then ANALYZEd (not timed), and one worker process that drains them (timed);
each run starts with the next system in turn, and ours ÷ theirs is taken within each run. Per job:

- ours: `bench_dispatch`'s null channel, one worker, N SMS due at one instant to N patients.
  Per claimed batch of 200: one transaction claims the rows (and locks their patients), one
  query reads the batch's SMS history, then each message is decided (caps, quiet hours,
  consent) and rendered from its Jinja2 template, and the outcomes of the batch are committed
  in one transaction. About 2 commits per 200 messages; every row is kept (status, body,
  provider id, sent_at).
- PgQueuer (asyncpg, its default driver), batch 10 (its default) and batch 1: one statement
  picks `batch` jobs (`FOR UPDATE SKIP LOCKED`, autocommit); completions are buffered and
  written together (the job rows are deleted and a log row inserted, up to `batch` jobs per
  statement). About 2 commits per `batch` jobs; queue rows deleted, 3 log rows kept per job
  (queued, picked, successful).
- procrastinate, concurrency 1 and 10: one call of its fetch function per job and one of its
  finish function per job, each its own transaction: 2 commits per job. Rows kept (status
  succeeded), and triggers add 3 event rows per job (deferred, started, succeeded).

The peers are installed by this script into their own virtualenv (`.bench-peers-venv/` at the
repository root, git-ignored) with pip from the configured index; they are never dependencies
of this project. `benchmarks/peer_jobs.py` runs in that environment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from benchmarks import bench_dispatch, common

PEER_PACKAGES = ("pgqueuer==1.6.0", "asyncpg==0.32.0", "procrastinate==3.10.0")
DEFAULT_VENV = common.ROOT / ".bench-peers-venv"
PEER_SCRIPT = Path(__file__).with_name("peer_jobs.py")


@dataclass(frozen=True)
class Peer:
    """One peer configuration: what `peer_jobs.py` runs, and how the table names it."""

    system: str
    setting: str
    arguments: tuple[str, ...]
    per_job: str


PEERS = (
    Peer("PgQueuer", "batch 10 (default)", ("pgqueuer", "--batch", "10"), "~2 commits / 10 jobs"),
    Peer("PgQueuer", "batch 1", ("pgqueuer", "--batch", "1"), "~2 commits / job"),
    Peer(
        "procrastinate", "concurrency 1", ("procrastinate", "--concurrency", "1"), "2 commits / job"
    ),
    Peer(
        "procrastinate",
        "concurrency 10",
        ("procrastinate", "--concurrency", "10"),
        "2 commits / job",
    ),
)
OURS_PER_JOB = "~2 commits / 200 messages"


def peer_python(venv: Path) -> Path:
    """The peers' virtualenv's Python, created and filled with PEER_PACKAGES when missing."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    wanted = " ".join(PEER_PACKAGES)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
        check=True,
    )
    stamp.write_text(wanted + "\n")
    return python


@contextmanager
def peer_schema(base_url: str) -> Iterator[str]:
    """A fresh schema for one peer, dropped afterwards; yields a libpq URL whose search_path
    is that schema (the peers use their own drivers, not SQLAlchemy)."""
    with common.postgres_schema(base_url, prefix="bench_peer") as url:
        yield make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_peer(python: Path, peer: Peer, base_url: str, jobs: int) -> float:
    """Jobs per second of one peer draining `jobs` no-op jobs."""
    with peer_schema(base_url) as dsn:
        finished = subprocess.run(
            [str(python), str(PEER_SCRIPT), *peer.arguments, "--dsn", dsn, "--jobs", str(jobs)],
            capture_output=True,
            text=True,
            cwd=common.ROOT,
            timeout=3600,
        )
    if finished.returncode != 0:
        raise RuntimeError(f"{peer.system} {peer.setting} failed:\n{finished.stderr[-3000:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if result["done"] != jobs or result["left"] != 0:
        raise RuntimeError(f"{peer.system} {peer.setting}: {result}")
    return float(jobs / result["seconds"])


def run_ours(base_url: str, jobs: int) -> float:
    """Messages per second of our dispatcher (null channel, one worker) on `jobs` due SMS."""
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        result = bench_dispatch.run(base_url, work, plans, templates, plan_id, jobs, 1, "null", 200)
    if result["check"] != "each sent once":
        raise RuntimeError(f"ours: {result['check']}")
    return float(jobs / result["seconds"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="no-op jobs (messages) each")
    common.runs_argument(parser)
    parser.add_argument(
        "--database-url", default=common.POSTGRES_URL, help="the PostgreSQL server to use"
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the peers' virtualenv")
    args = parser.parse_args(argv)
    python = peer_python(args.venv)
    ours: list[float] = []
    theirs: dict[Peer, list[float]] = {peer: [] for peer in PEERS}
    for number in range(1, args.runs + 1):
        started = time.monotonic()
        # Each run starts with the next system, so a slow stretch of a shared machine does
        # not always fall on the same one.
        order: list[Peer | None] = [None, *PEERS]
        shift = (number - 1) % len(order)
        for system in order[shift:] + order[:shift]:
            if system is None:
                ours.append(run_ours(args.database_url, args.jobs))
            else:
                theirs[system].append(run_peer(python, system, args.database_url, args.jobs))
        rates = ", ".join(f"{p.system} {p.setting} {r[-1]:,.0f}" for p, r in theirs.items())
        print(
            f"run {number}/{args.runs} ({time.monotonic() - started:.0f} s): "
            f"ours {ours[-1]:,.0f}, {rates}",
            flush=True,
        )
    mine = common.with_spread(ours)
    rows = [["reminders (ours)", "null channel, 1 worker", OURS_PER_JOB, mine, ""]]
    for peer, rates in theirs.items():
        ratios = [mine / other for mine, other in zip(ours, rates, strict=True)]
        rows.append(
            [
                peer.system,
                peer.setting,
                peer.per_job,
                common.with_spread(rates),
                common.with_spread(ratios),
            ]
        )
    common.print_table(
        f"peers: {args.jobs:,} no-op jobs each, one worker, PostgreSQL, "
        f"median (min–max) of {args.runs} run(s); ours ÷ theirs > 1 means ours is faster",
        ["system", "setting", "commits", "jobs/s", "ours ÷ theirs"],
        rows,
    )


if __name__ == "__main__":
    main()
