"""Quiet hours that end inside the repeated hour of a fall-back night still move time forward."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.plans.model import QuietHours
from reminders.schedule import decide_send, leave_quiet_hours

NEW_YORK = ZoneInfo("America/New_York")
# Quiet until 01:30; on 1 November 2026 New York's clocks go from 02:00 EDT back to 01:00 EST.
QUIET = QuietHours(start=time(21, 0), end=time(1, 30))
SECOND_0110 = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, the second 01:10


def test_leaving_quiet_hours_never_moves_back_in_time() -> None:
    local = SECOND_0110.astimezone(NEW_YORK)
    assert local.fold == 1 and QUIET.contains(local.time())
    moved, _ = leave_quiet_hours(local, QUIET)
    assert moved.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_a_quiet_hours_deferral_is_always_in_the_future() -> None:
    due = SECOND_0110 - timedelta(hours=2)
    decision = decide_send(SECOND_0110, due, due + timedelta(hours=12), "America/New_York", QUIET)
    assert decision.action == "defer"
    assert decision.at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
