"""The long-running dispatcher: an APScheduler job that wakes when the next message is due.

One date-triggered job, re-armed after every pass for the earliest pending message (or an
idle poll, so that enrollments made by other processes are noticed; on PostgreSQL they wake it
at once through LISTEN/NOTIFY). Messages themselves are
rows in the outbox, never pickled scheduler jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from reminders.clock import utc_now
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.errors import ReminderError
from reminders.store.changes import ChangeListener

log = logging.getLogger(__name__)
JOB_ID = "dispatch-pass"


class DispatchService:
    """Runs dispatch passes in the background, each when the next message is due."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        idle_poll: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = utc_now,
        on_pass: Callable[[PassReport], object] | None = None,
        changes: Callable[[Callable[[], object]], ChangeListener | None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.idle_poll = idle_poll
        self.clock = clock
        self.on_pass = on_pass
        # Changes written by other processes wake a pass at once where the database can say
        # so (PostgreSQL LISTEN/NOTIFY); the idle poll stays as the fall-back.
        self.listener = changes(self.wake) if changes is not None else None
        self.passes = 0
        self._lock = threading.Lock()
        self._running_pass = False
        self._wake_requested = False
        # One worker thread runs passes one at a time; a second instance may wait in its queue,
        # so that a pass armed before the current one has returned is queued, not dropped.
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Start the scheduler with a pass right away."""
        self.scheduler.start()
        self._arm(self.clock())
        if self.listener is not None:
            self.listener.start()

    def stop(self) -> None:
        """Stop after the pass in progress, if any."""
        if self.listener is not None:
            self.listener.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def wake(self) -> None:
        """Run a pass now (after an enrollment, say) instead of at the armed time."""
        with self._lock:
            if self._running_pass:
                self._wake_requested = True
                return
        try:
            self.scheduler.modify_job(JOB_ID, next_run_time=self.clock())
        except JobLookupError:
            self._arm(self.clock())

    def next_wake(self) -> datetime | None:
        """When the next pass is armed for."""
        job = self.scheduler.get_job(JOB_ID)
        return job.next_run_time if job else None

    def _arm(self, at: datetime) -> None:
        self.scheduler.add_job(
            self._pass, trigger="date", run_date=at, id=JOB_ID, replace_existing=True
        )

    def _pass(self) -> None:
        with self._lock:
            self._running_pass = True
            self._wake_requested = False
        report = None
        try:
            report = self.dispatcher.run_once()
            self.passes += 1
            if report.handled:
                log.info("dispatch pass: %s", dict(report.outcomes))
        except Exception:  # the service must outlive one bad pass; the next pass retries
            log.exception("dispatch pass failed")
        finally:
            self._rearm()
        if report is not None and self.on_pass:
            try:
                self.on_pass(report)
            except Exception as exc:  # a failing hook must not stop dispatching
                if isinstance(exc, ReminderError) and exc.__cause__ is None:
                    log.error("after-pass hook failed: %s", exc)  # its text says it all
                else:
                    log.exception("after-pass hook failed")

    def _rearm(self) -> None:
        """Arm the next pass for the earliest pending message, a wake-up, or the idle poll.

        The pass counts as running until the job is armed: a wake-up in between is noted
        here rather than moving a job that this method would then overwrite.
        """
        now = self.clock()
        try:
            next_due = self.dispatcher.outbox.next_due_at()
        except Exception:  # the database may be briefly away; poll again later
            log.exception("could not read the next due message")
            next_due = None
        at = now + self.idle_poll
        if next_due is not None:
            at = max(now, min(at, next_due))
        with self._lock:
            if self._wake_requested:
                at = self.clock()
            if self.scheduler.running:
                self._arm(at)
            self._running_pass = False
