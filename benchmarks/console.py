"""Console page latency at size: N patients x 13 messages, every page requested through the
whole application (middleware, session check, queries, templates) with an in-process client.

Rows are generated in SQL like bench_views (one enrollment per patient on the MILD plan, 3 sent
and some failed messages each). Each page is requested `--runs` times after one warm-up; the
figures are p50 and p95 in milliseconds, per database (SQLite, and PostgreSQL when reachable).
The issue's target is p95 under 100 ms with 100,000 patients.

    .venv/bin/python -m benchmarks.console --patients 100000 --runs 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from benchmarks import common
from benchmarks.bench_views import STEPS, fill
from reminders.access.actor import Actor
from reminders.api.app import create_app
from reminders.app import App
from reminders.roles import Role
from reminders.settings import Settings
from reminders.store.storage import Storage

PASSWORD = "benchmark password"
STAFF_PAGES = {
    "today": "/console/today",
    "patients": "/console/patients",
    "patients ?q=P-00500": "/console/patients?q=P-00500",
    "patients ?q=mar (name)": "/console/patients?q=mar",
    "patients plan+status+dates": "/console/patients?plan=mild&status=active"
    "&from=2026-03-01&to=2026-03-31",
    "patients page 2": None,  # the Next link of the first page
    "patient P-0050000": "/console/patients/P-{middle}",
    "messages": "/console/messages",
    "messages ?status=failed": "/console/messages?status=failed",
    "messages ?status=pending&channel=sms": "/console/messages?status=pending&channel=sms",
    "outcomes": "/console/outcomes",
    "enroll (form)": "/console/enroll",
    "plans": "/console/plans",
    "plan mild (staff: no rollout)": "/console/plans/mild",
}
ADMIN_PAGES = {"audit": "/console/audit"}


def _client(app: App, name: str, role: Role) -> TestClient:
    app.access().create_user(name, role, PASSWORD, Actor.cli("benchmark"))
    client = TestClient(create_app(app), follow_redirects=False)
    form = client.get("/console/sign-in").text
    token = form.split('name="form_token" value="')[1].split('"')[0]
    answer = client.post(
        "/console/sign-in", data={"name": name, "password": PASSWORD, "form_token": token}
    )
    assert answer.status_code == 303, answer.text
    return client


def _next_page(client: TestClient) -> str:
    first = client.get("/console/patients").text
    return first.split('href="')[-1].split('">Next page')[0].replace("&amp;", "&")


def _time(client: TestClient, path: str, runs: int) -> tuple[float, float]:
    assert client.get(path).status_code == 200, path  # warm-up, and the page must work
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(path)
        walls.append((time.perf_counter() - started) * 1000)
    return common.percentile(walls, 0.5), common.percentile(walls, 0.95)


def measure(url: str, plans: Path, templates: Path, patients: int, runs: int) -> list[list[Any]]:
    """p50 and p95 of every page on one filled database."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        plans_dir=plans,
        templates_dir=templates,
        password_hash_memory_kib=1024,
    )
    app = App.from_settings(settings)
    staff = _client(app, "bench-staff", Role.STAFF)
    admin = _client(app, "bench-admin", Role.ADMIN)
    middle = f"{patients // 2:07d}"
    rows = []
    for name, path in STAFF_PAGES.items():
        path = _next_page(staff) if path is None else path.format(middle=middle)
        p50, p95 = _time(staff, path, runs)
        rows.append([name, f"{p50:.1f}", f"{p95:.1f}", "yes" if p95 < 100 else "NO"])
    for name, path in ADMIN_PAGES.items():
        p50, p95 = _time(admin, path, runs)
        rows.append([name, f"{p50:.1f}", f"{p95:.1f}", "yes" if p95 < 100 else "NO"])
    app.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--database-url", help="one database (default: SQLite and PostgreSQL)")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    kinds = common.database_kinds(args.database_url, include_postgres=not args.sqlite_only)
    with common.workdir() as work:
        plans, templates, plan_id = common.plan_folders(work)
        if plan_id != "mild":
            raise SystemExit("benchmarks/console.py needs plans/mild.yaml to load")
        for kind in kinds:
            with common.database(kind, work) as url:
                storage = Storage.open(url)
                started = time.perf_counter()
                fill(storage.database.engine, args.patients)
                storage.close()
                print(
                    f"{common.label(kind)}: {args.patients:,} patients, "
                    f"{args.patients * STEPS:,} messages generated in "
                    f"{time.perf_counter() - started:.0f} s"
                )
                common.print_table(
                    f"{common.label(kind)}: console pages, {args.runs} requests each (ms)",
                    ["page", "p50", "p95", "p95 < 100 ms"],
                    measure(url, plans, templates, args.patients, args.runs),
                )


if __name__ == "__main__":
    main()
