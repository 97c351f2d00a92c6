"""A wake-up asked for during a pass, or while the next one is being armed, is never lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from plan_fixtures import CLINIC, write_demo_plan

from reminders.catalog import PlanCatalog
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.dispatch.service import DispatchService
from reminders.dispatch.settings import DispatchSettings
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel


@pytest.fixture
def dispatcher(sqlite_url: str, tmp_path: Path) -> Iterator[Dispatcher]:
    storage = Storage.open(sqlite_url)
    plans, templates = write_demo_plan(tmp_path)
    yield Dispatcher(
        storage,
        PlanCatalog(plans, templates),
        {"sms": InMemoryChannel("sms"), "email": InMemoryChannel("email")},
        DispatchSettings(clinic=CLINIC),
    )
    storage.close()


def wait_for_passes(service: DispatchService, count: int, timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    while service.passes < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return service.passes


def test_a_wake_up_during_a_pass_runs_another_pass_after_a_slow_hook(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_done = threading.Event()

    def slow_hook(_: PassReport) -> None:  # flag_missing_replies does database work here
        time.sleep(0.3)
        hook_done.set()

    service = DispatchService(dispatcher, idle_poll=timedelta(hours=1), on_pass=slow_hook)
    run_once = dispatcher.run_once

    def enrollment_arrives_during_the_pass(max_messages: int | None = None) -> PassReport:
        if not hook_done.is_set() and service.passes == 0:
            service.wake()
        return run_once(max_messages)

    monkeypatch.setattr(dispatcher, "run_once", enrollment_arrives_during_the_pass)
    service.start()
    try:
        assert wait_for_passes(service, 2) >= 2
        # A pass counts itself before it arms the next one (a date job is gone while it runs):
        # wait for the arming rather than read it in that gap.
        deadline = time.monotonic() + 3.0
        while service.next_wake() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.next_wake() is not None
    finally:
        service.stop()


def test_a_wake_up_while_the_next_pass_is_armed_is_not_overwritten(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = DispatchService(dispatcher, idle_poll=timedelta(hours=1))
    next_due_at = dispatcher.outbox.next_due_at

    def enrollment_arrives_after_the_read() -> datetime | None:
        due = next_due_at()
        if service.passes == 1:
            service.wake()
        return due

    monkeypatch.setattr(dispatcher.outbox, "next_due_at", enrollment_arrives_after_the_read)
    service.start()
    try:
        assert wait_for_passes(service, 2) >= 2
    finally:
        service.stop()
