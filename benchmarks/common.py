"""Shared parts of the benchmarks: databases, plans, synthetic patients, figures and tables.

Run the benchmarks from the repository root as modules, e.g.
`.venv/bin/python -m benchmarks.bench_import --help`.
"""

from __future__ import annotations

import csv
import functools
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, make_url, text

from reminders.catalog import PlanCatalog
from reminders.channels.null import NullChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.schedule import PlannedMessage, ScheduleInput, compute_schedule
from reminders.store.database import database_reachable
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.storage import Storage
from reminders.templating.context import Clinic

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLINIC = Clinic("Riverside Clinic", "(555) 010-0100")
AREA_CODES = (202, 212, 305, 312, 404, 415, 503, 206, 617, 718)
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


# -- figures -----------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux keeps getrusage's ru_maxrss across exec, so a spawned child would report its
    parent's peak; VmHWM (the same figure, reset at exec) is read instead where it exists.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction 0.5 = median)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def runs_argument(parser: Any) -> None:
    """`--runs N` (default 3): every figure is the median of N runs, printed with its spread."""
    parser.add_argument(
        "--runs", type=int, default=3, help="repeat each measurement; median (min-max) printed"
    )


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, lowest, highest) of the runs' figures."""
    return statistics.median(values), min(values), max(values)


def with_spread(values: Sequence[float]) -> str:
    """A figure as "median (min–max)", or just the figure when there was one run."""
    middle, low, high = median_spread(values)
    # one format for all three: whole numbers as such, else 3 decimals below 10
    small = abs(middle) < 10 and not all(float(v).is_integer() for v in values)

    def number(value: float) -> str:
        return f"{value:,.3f}" if small else f"{value:,.0f}"

    if len(values) == 1:
        return number(middle)
    return f"{number(middle)} ({number(low)}–{number(high)})"


CALIBRATION_STEPS = 5_000_000


@functools.cache
def machine_speed() -> float:
    """Seconds one core takes for a fixed pure-Python loop (best of 3; lower is faster).

    The machines these scripts run on differ in speed from session to session (the same code
    measured 2.5x apart), so every table says how fast the machine was: compare figures taken
    on different days through it, or not at all.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for step in range(CALIBRATION_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return best


def machine_line() -> str:
    """One line naming the machine's speed and load, printed under every table's title."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores; a {CALIBRATION_STEPS:,}-step Python loop takes "
        f"{machine_speed():.3f} s (lower is faster); load average {load}"
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A small fixed-width table on stdout, under its title and the machine's speed."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print(machine_line())
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# -- databases ---------------------------------------------------------------------------------


def postgres_reachable(url: str = POSTGRES_URL) -> bool:
    """Whether the PostgreSQL server answers."""
    return database_reachable(url)


@contextmanager
def database(kind_or_url: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL: "sqlite" (a file in `workdir`), or a PostgreSQL URL (or
    "postgresql" for the local server) narrowed to a new schema that is dropped afterwards.

    A SQLite URL names where the files go: each use gets a new file beside it (its name plus a
    random suffix), removed afterwards, so repeated runs never meet an earlier run's rows and
    an existing database at that path is never touched."""
    if kind_or_url == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    if kind_or_url.startswith("sqlite:"):
        named = Path(make_url(kind_or_url).database or "bench.sqlite3")
        fresh = named.with_name(f"{named.stem}-{uuid.uuid4().hex[:8]}{named.suffix or '.sqlite3'}")
        try:
            yield f"sqlite:///{fresh}"
        finally:
            for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
                leftover.unlink(missing_ok=True)
        return
    with postgres_schema(POSTGRES_URL if kind_or_url == "postgresql" else kind_or_url) as url:
        yield url


@contextmanager
def postgres_schema(base: str, prefix: str = "bench") -> Iterator[str]:
    """`base` (a PostgreSQL URL) narrowed to a new schema named `prefix`_<random>, whose
    search_path it sets; the schema is dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_kinds(requested: str | None, include_postgres: bool = True) -> list[str]:
    """["sqlite", "postgresql"] by default (PostgreSQL when reachable), or the one URL given."""
    if requested:
        return [requested]
    kinds = ["sqlite"]
    if include_postgres:
        if postgres_reachable():
            kinds.append("postgresql")
        else:
            print(f"(PostgreSQL not reachable at {POSTGRES_URL}; SQLite only)")
    return kinds


def label(kind_or_url: str) -> str:
    """A short name for a database in tables and file names (never the URL itself)."""
    return "sqlite" if kind_or_url.startswith("sqlite") else "postgresql"


@contextmanager
def workdir() -> Iterator[Path]:
    """A temporary folder for database files, CSVs and recordings."""
    with tempfile.TemporaryDirectory(prefix="reminders-bench-") as folder:
        yield Path(folder)


# -- plans -------------------------------------------------------------------------------------


def plan_folders(work: Path) -> tuple[Path, Path, str]:
    """(plans, templates, plan id): the MILD plan if it passes the check, else the test demo."""
    try:
        catalog = PlanCatalog(ROOT / "plans", ROOT / "templates")
        if "mild" in catalog.ids():
            return ROOT / "plans", ROOT / "templates", "mild"
    except Exception as exc:
        print(f"(MILD plan does not load: {exc}; using the tests' demo plan)")
    sys.path.insert(0, str(ROOT / "tests"))
    from plan_fixtures import write_demo_plan

    plans, templates = write_demo_plan(work / "demo-plan")
    return plans, templates, "demo"


def dispatcher(storage: Storage, catalog: PlanCatalog, worker: str | None = None) -> Dispatcher:
    """A dispatcher that hands every message to a NullChannel."""
    channels = {"sms": NullChannel("sms"), "email": NullChannel("email")}
    return Dispatcher(storage, catalog, channels, DispatchSettings(clinic=CLINIC), worker_id=worker)


# -- synthetic patients ------------------------------------------------------------------------


def phone_number(index: int) -> str:
    """A distinct valid US number per index (up to 80 million of them)."""
    area = AREA_CODES[index % len(AREA_CODES)]
    rest = index // len(AREA_CODES)
    exchange = 200 + rest // 10000
    return f"+1{area}{exchange}{rest % 10000:04d}"


def patient_row(index: int, plan_id: str, rng: random.Random, today: date) -> dict[str, str]:
    """One CSV row as staff would export it."""
    sms = rng.random() < 0.8
    return {
        "external_id": f"P-{index:08d}",
        "first_name": rng.choice(("Maria", "James", "Aiko", "Olu", "Sofia", "Liam", "Noor")),
        "phone": phone_number(index),
        "email": f"patient{index}@example.org",
        "timezone": rng.choice(ZONES),
        "language": rng.choice(("en", "en", "en", "es")),
        "preferred_channel": "sms" if sms else "email",
        "sms_consent": "yes",
        "plan": plan_id,
        "procedure_date": (today + timedelta(days=rng.randint(15, 120))).isoformat(),
        "procedure_time": rng.choice(("07:30", "09:00", "13:15", "")),
    }


def write_patients_csv(path: Path, count: int, plan_id: str, seed: int = 7) -> None:
    """A CSV of `count` patients as the CSV import reads it; blood thinners and NSAIDs as
    attribute columns (`attr_<name>`)."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = None
        for index in range(count):
            row: dict[str, str] = patient_row(index, plan_id, rng, today)
            row["attr_takes_blood_thinners"] = rng.choice(("yes", "no"))
            row["attr_takes_nsaids"] = rng.choice(("yes", "no", "no"))
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)


ATTRIBUTE_PREFIX = "attr_"


def csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, enrollment input) for each CSV row; extra columns become attributes."""
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            attributes = {
                name.removeprefix(ATTRIBUTE_PREFIX): row.pop(name)
                for name in list(row)
                if name.startswith(ATTRIBUTE_PREFIX)
            }
            yield number, {**row, "attributes": attributes}


def daytime_zone(now: datetime | None = None) -> str:
    """A time zone in which it is now between 10:00 and 18:00, so quiet hours never interfere."""
    now = now or datetime.now(UTC)
    for zone in (
        "America/New_York",
        "Europe/London",
        "Asia/Tokyo",
        "America/Los_Angeles",
        "Asia/Kolkata",
        "Pacific/Auckland",
        "America/Sao_Paulo",
        "Asia/Dubai",
        "Pacific/Honolulu",
        "Australia/Sydney",
        "Europe/Berlin",
        "America/Chicago",
    ):
        if 10 <= now.astimezone(ZoneInfo(zone)).hour < 18:
            return zone
    raise RuntimeError("no daytime zone found")


def due_requests(
    catalog: PlanCatalog,
    plan_id: str,
    due_times: Sequence[datetime],
    *,
    first_index: int = 0,
    window: timedelta = timedelta(hours=2),
) -> list[EnrollmentRequest]:
    """One patient per due time, each with exactly one SMS due then (a distinct phone each).

    The message is a real step of the plan (so it renders), moved to the chosen instant.
    """
    plan = catalog.get(plan_id).plan
    zone = daytime_zone()
    procedure = datetime.now(UTC).date() - timedelta(days=3)
    template_message: PlannedMessage | None = None
    for message in compute_schedule(plan, ScheduleInput(procedure, zone)):
        if (
            message.channel == "sms"
            and message.skip_reason is None
            and message.phase.value != ("pre-procedure")
        ):
            template_message = message
            break
    if template_message is None:
        raise RuntimeError(f"plan {plan_id} has no post-procedure SMS step")
    requests = []
    for offset, due in enumerate(due_times):
        index = first_index + offset
        record = PatientRecord(
            external_id=f"P-{index:08d}",
            first_name="Maria",
            timezone=zone,
            language="en",
            preferred_channel="sms",
            phone=phone_number(index),
        )
        message = replace(
            template_message,
            due_at=due,
            send_before=due + window,
            local_due=due.astimezone(ZoneInfo(zone)),
        )
        requests.append(
            EnrollmentRequest(record, plan.id, plan.version, procedure, None, [message])
        )
    return requests


def enroll_due(
    storage: Storage, catalog: PlanCatalog, plan_id: str, due_times: Sequence[datetime]
) -> None:
    """Storage one due SMS per patient for each instant, in batches of 1000."""
    for start in range(0, len(due_times), 1000):
        chunk = due_times[start : start + 1000]
        storage.patients.enroll_many(
            due_requests(catalog, plan_id, chunk, first_index=start), datetime.now(UTC)
        )


# -- the Twilio stand-in -----------------------------------------------------------------------


@contextmanager
def twilio_standin_process(record: Path) -> Iterator[str]:
    """Run the Twilio stand-in in its own process, recording accepted messages; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.testing.twilio_standin", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the Twilio stand-in did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until(condition: Any, timeout: float, step: float = 0.05) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
