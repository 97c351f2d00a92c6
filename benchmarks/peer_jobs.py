"""One peer job queue draining N no-op jobs; run by `benchmarks.peers` in the peers' virtualenv.

This file imports PgQueuer or procrastinate, which are never dependencies of this project:
`benchmarks/peers.py` installs them into `.bench-peers-venv/` and runs this file with that
environment's Python, in a schema of its own (the connection's search_path). It does not import
anything from `reminders`. It prints one JSON line: jobs enqueued, jobs done, seconds.

- pgqueuer: enqueue N jobs in one batched INSERT, ANALYZE, then one QueueManager (asyncpg,
  PgQueuer's default driver) in drain mode with `--batch` jobs per dequeue.
- procrastinate: defer N jobs with batch_defer, ANALYZE, then one worker (`wait=False`: stops
  once the queue is empty) with `--concurrency` jobs at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any


async def pgqueuer_run(dsn: str, jobs: int, batch: int) -> dict[str, Any]:
    """Install PgQueuer's tables, enqueue, ANALYZE, drain with one QueueManager."""
    import asyncpg
    from pgqueuer import QueueManager
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    connection = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(connection))
    await queries.install()
    started = time.perf_counter()
    for start in range(0, jobs, 10_000):
        size = min(10_000, jobs - start)
        await queries.enqueue(["noop"] * size, [None] * size, [0] * size)
    enqueue_seconds = time.perf_counter() - started
    await connection.execute("ANALYZE")
    done = 0
    worker = await asyncpg.connect(dsn)
    manager = QueueManager(Queries(AsyncpgDriver(worker)))

    @manager.entrypoint("noop")
    async def noop(job: Any) -> None:
        nonlocal done
        done += 1

    started = time.perf_counter()
    await manager.run(batch_size=batch, mode=QueueExecutionMode.drain)
    seconds = time.perf_counter() - started
    left = await connection.fetchval("SELECT count(*) FROM pgqueuer")
    await connection.close()
    if not worker.is_closed():
        await worker.close()
    return {"enqueue_seconds": enqueue_seconds, "seconds": seconds, "done": done, "left": left}


async def procrastinate_run(conninfo: str, jobs: int, concurrency: int) -> dict[str, Any]:
    """Apply procrastinate's schema, defer, ANALYZE, run one worker until the queue is empty."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    done = 0

    @app.task(name="noop")
    async def noop() -> None:
        nonlocal done
        done += 1

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        started = time.perf_counter()
        for start in range(0, jobs, 10_000):
            size = min(10_000, jobs - start)
            await noop.batch_defer_async(*({} for _ in range(size)))
        enqueue_seconds = time.perf_counter() - started
        await app.connector.execute_query_async("ANALYZE")
        started = time.perf_counter()
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        seconds = time.perf_counter() - started
        row = await app.connector.execute_query_one_async(
            "SELECT count(*) AS left FROM procrastinate_jobs WHERE status <> 'succeeded'"
        )
    left = row["left"]
    return {"enqueue_seconds": enqueue_seconds, "seconds": seconds, "done": done, "left": left}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=("pgqueuer", "procrastinate"))
    parser.add_argument("--dsn", required=True, help="libpq URL, search_path set to a fresh schema")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10, help="PgQueuer: jobs per dequeue")
    parser.add_argument("--concurrency", type=int, default=1, help="procrastinate: jobs at once")
    args = parser.parse_args(argv)
    if args.system == "pgqueuer":
        result = asyncio.run(pgqueuer_run(args.dsn, args.jobs, args.batch))
    else:
        result = asyncio.run(procrastinate_run(args.dsn, args.jobs, args.concurrency))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
