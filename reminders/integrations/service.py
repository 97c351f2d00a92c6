"""One appointment event -> enroll, reschedule or cancel, through the enrollment service.

Idempotent by the message's control id (a replay is answered as the first time) and ordered
by the appointment's own message times (an older message than the last one applied changes
nothing). Every message is logged with its outcome, and its raw text for a limited time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from reminders.clock import utc_now
from reminders.enrollment import EnrollmentService, ValidEnrollment
from reminders.enrollment_input import EnrollmentInput
from reminders.errors import EnrollmentError, NotFoundError
from reminders.inputs import fitted
from reminders.integrations.booking import (
    Refusal,
    booked_patient,
    booking_input,
    patient_external_id,
    refusal,
    site_instant,
    utc_or_none,
)
from reminders.integrations.events import AppointmentAction, AppointmentEvent
from reminders.integrations.mapping import Rule, SchedulingMapping, Site
from reminders.store.feed_schema import AppointmentStatus, FeedOutcome

__all__ = ["AppointmentService", "FeedOutcome", "FeedResult"]
from reminders.store.feeds import AppointmentRecord, FeedMessageRecord
from reminders.store.inbound_schema import FlagKind
from reminders.store.reply_records import NewFlag
from reminders.store.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedResult:
    """The outcome, a reason a person can act on, and the acknowledgement code (AA/AE/AR)."""

    outcome: FeedOutcome
    detail: str
    ack_code: str = "AA"
    external_id: str | None = None
    plan_id: str | None = None


class AppointmentService:
    """Applies appointment events to enrollments, the same way for every feed."""

    def __init__(
        self,
        enrollment_for: Callable[[str], EnrollmentService],
        storage: Storage,
        mapping: SchedulingMapping,
        *,
        keep_raw: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.enrollment_for = enrollment_for
        self._enrollments: dict[str, EnrollmentService] = {}
        self._actor = ""
        self.database = storage.database
        self.feeds = storage.feeds
        self.flags = storage.outcomes
        self.mapping = mapping
        self.keep_raw = keep_raw
        self.clock = clock
        self._lock = threading.Lock()
        self._last_purge: datetime | None = None

    # -- entry points ---------------------------------------------------------------------

    def handle(
        self, event: AppointmentEvent, raw: str | None, actor: str | None = None
    ) -> FeedResult:
        """Apply one event (once) and log it with its raw text, in one transaction.

        The control-id check, the appointment's order, the enrollment (with its audit entry),
        any flag, and the log line with the raw text and the acknowledgement are committed
        together, or (on an error) none of them. `actor` names who sent it for the log: by
        default `hl7:<sending facility>`.
        """
        actor = actor or f"{event.source}:{event.sender}"
        with self._lock:
            self._actor = actor
            self._purge_old_raw()
            try:
                result = self._handle_once(event, raw, actor)
            except IntegrityError:
                # Another process logged this control id (or first saw this appointment)
                # meanwhile: everything here was rolled back; look again, as a replay would.
                result = self._handle_once(event, raw, actor)
        log.info("%s %s: %s", event.source, event.event_code, result.outcome.value)
        return result

    def _handle_once(self, event: AppointmentEvent, raw: str | None, actor: str) -> FeedResult:
        with self.database.unit_of_work():
            earlier, known = self.feeds.lookup(
                event.source, event.sender, event.message_id, event.appointment_id
            )
            if earlier is not None:
                return FeedResult(
                    FeedOutcome.DUPLICATE,
                    f"already received (first: {earlier.outcome}): {earlier.detail}",
                    earlier.ack_code,
                    earlier.external_id,
                    earlier.plan_id,
                )
            record = None
            try:
                result, record = self._apply(event, known)
            except Refusal as refusal:
                result = FeedResult(FeedOutcome.REFUSED, str(refusal), self.mapping.refusals)
            self.feeds.record(
                self._log_line(event, result, raw, actor),
                record,
                appointment_known=known is not None,
            )
        return result

    def reject(self, source: str, sender: str, message_id: str, reason: str, raw: str) -> None:
        """Log a message that could not be parsed at all (answered AR)."""
        with self._lock:
            self.feeds.record_message(
                FeedMessageRecord(
                    0,
                    source,
                    sender,
                    message_id,
                    f"{source}:{sender}",
                    self.clock(),
                    None,
                    "(unparsed)",
                    None,
                    None,
                    None,
                    FeedOutcome.REJECTED,
                    "AR",
                    reason,
                    raw,
                )
            )
        log.info("%s message rejected", source)

    @property
    def enrollment(self) -> EnrollmentService:
        """The enrollment service acting (and audited) in the name of the current sender."""
        service = self._enrollments.get(self._actor)
        if service is None:
            service = self._enrollments[self._actor] = self.enrollment_for(self._actor)
        return service

    # -- the rules ------------------------------------------------------------------------

    def _apply(
        self, event: AppointmentEvent, known: AppointmentRecord | None
    ) -> tuple[FeedResult, AppointmentRecord | None]:
        """What the event does, and what we then know of its appointment (None: unchanged)."""
        site = self.mapping.site_for(event.location, event.facility)
        if site is None:
            raise Refusal(
                f"no site for location '{event.location or ''}' or facility "
                f"'{event.facility or ''}', so no time zone: add it to the mapping file's sites"
            )
        zone = ZoneInfo(site.timezone)
        sent_at = site_instant(event.sent_at, zone)
        if known and known.last_sent_at and sent_at and sent_at < known.last_sent_at:
            stale = FeedResult(
                FeedOutcome.STALE,
                f"older than the last message applied to this appointment "
                f"({known.last_sent_at:%Y-%m-%d %H:%M:%S} UTC); nothing changed",
                external_id=known.external_id,
                plan_id=known.plan_id,
            )
            return stale, None
        if event.action is AppointmentAction.OTHER:
            return FeedResult(FeedOutcome.IGNORED, f"event {event.event_code} is not used"), None
        if event.action in (AppointmentAction.BOOKED, AppointmentAction.MOVED):
            return self._book(event, site, known, sent_at)
        return self._stop(event, site, known, sent_at)

    def _book(
        self,
        event: AppointmentEvent,
        site: Site,
        known: AppointmentRecord | None,
        sent_at: datetime | None,
    ) -> tuple[FeedResult, AppointmentRecord]:
        rule = self.mapping.rule_for(event.codes, event.location)
        if rule is None:
            codes = ", ".join(f"{c.system}|{c.code}" for c in event.codes) or "none"
            return (
                FeedResult(FeedOutcome.IGNORED, f"no plan for codes {codes}"),
                _record(event, known, None, None, AppointmentStatus.UNMAPPED, None, sent_at),
            )
        entry = self._entry(event, site, rule)
        external_id = entry.record.external_id
        self._refuse_duplicate_person(event, entry)
        start_at = datetime.combine(
            entry.item.procedure_date, entry.item.procedure_time or datetime.min.time()
        ).replace(tzinfo=ZoneInfo(site.timezone))
        halted = _halted_and_unmoved(event, known, rule.plan, start_at)
        if halted is AppointmentStatus.CANCELLED:
            assert known is not None
            return (
                FeedResult(
                    FeedOutcome.IGNORED,
                    f"{event.event_code or event.action.value} of a cancelled appointment that "
                    "does not move it: nothing changed (a new start or a new booking restarts it)",
                    external_id=known.external_id,
                    plan_id=known.plan_id,
                ),
                _record(event, known, None, None, halted, known.start_at, sent_at),
            )
        if known and known.plan_id and known.external_id and known.plan_id != rule.plan:
            self._cancel(known.external_id, known.plan_id, "the appointment changed procedure")
        # After a no-show, a modification that does not move the procedure updates the
        # patient; what the no-show cancelled stays cancelled.
        outcome = self.enrollment.enroll([entry], keep_cancelled=halted is not None)[0]
        kind = FeedOutcome.ENROLLED if outcome.created else FeedOutcome.MOVED
        moved = sum(1 for change in outcome.changes if change.plans_a_send)
        detail = (
            f"{kind.value} on plan {rule.plan}, procedure {entry.item.procedure_date} "
            f"{entry.item.procedure_time or ''} ({site.timezone}); {moved} message(s) planned"
        )
        return (
            FeedResult(kind, detail, external_id=external_id, plan_id=rule.plan),
            _record(
                event,
                known,
                external_id,
                rule.plan,
                halted or AppointmentStatus.BOOKED,
                start_at,
                sent_at,
            ),
        )

    def _stop(
        self,
        event: AppointmentEvent,
        site: Site,
        known: AppointmentRecord | None,
        sent_at: datetime | None,
    ) -> tuple[FeedResult, AppointmentRecord]:
        no_show = event.action is AppointmentAction.NO_SHOW
        status = AppointmentStatus.NO_SHOW if no_show else AppointmentStatus.CANCELLED
        target = self._target(event, known)
        start_at = known.start_at if known else None
        if target is None:
            return (
                FeedResult(FeedOutcome.IGNORED, f"{status}: no enrollment for this appointment"),
                _record(event, known, None, None, status, start_at, sent_at),
            )
        external_id, plan_id = target
        reason = event.reason or ("no-show" if no_show else "appointment cancelled")
        try:
            if no_show:
                patient_id, count = self.enrollment.cancel_after_procedure(
                    external_id, fitted(f"no-show: {reason}"), plan_id
                )
                self.flags.create_flags(
                    [
                        NewFlag(
                            patient_id, FlagKind.NO_SHOW, f"did not attend the procedure ({reason})"
                        )
                    ],
                    self.clock(),
                )
                result = FeedResult(
                    FeedOutcome.NO_SHOW,
                    f"no-show: {count} pending message(s) from the procedure day on cancelled; "
                    "flagged for staff",
                    external_id=external_id,
                    plan_id=plan_id,
                )
            else:
                count = self._cancel(external_id, plan_id, reason)
                result = FeedResult(
                    FeedOutcome.CANCELLED,
                    f"cancelled ({reason}): {count} pending message(s) cancelled",
                    external_id=external_id,
                    plan_id=plan_id,
                )
        except NotFoundError:
            result = FeedResult(FeedOutcome.IGNORED, f"{status}: no enrollment for this patient")
        return result, _record(event, known, external_id, plan_id, status, start_at, sent_at)

    def _target(
        self, event: AppointmentEvent, known: AppointmentRecord | None
    ) -> tuple[str, str] | None:
        """Whose enrollment a cancel or no-show is about."""
        if known and known.external_id and known.plan_id:
            return known.external_id, known.plan_id
        rule = self.mapping.rule_for(event.codes, event.location)
        external_id = patient_external_id(self.mapping, event.patient) if event.patient else None
        if rule is None or external_id is None:
            return None
        return external_id, rule.plan

    def _cancel(self, external_id: str, plan_id: str, reason: str) -> int:
        return self.enrollment.cancel(external_id, fitted(reason), plan_id)

    def _entry(self, event: AppointmentEvent, site: Site, rule: Rule) -> ValidEnrollment:
        """The enrollment input the message gives, validated by the enrollment service."""
        current = self._current_input(booked_patient(event, self.mapping)[1], rule.plan)
        item = booking_input(event, site, rule, self.mapping, current)
        try:
            return self.enrollment.validate(item)
        except EnrollmentError as exc:
            raise refusal(event.source, exc) from None

    def _current_input(self, external_id: str, plan_id: str) -> EnrollmentInput | None:
        """The patient's enrollment on this plan as stored, if there is one."""
        try:
            enrollment_id, _ = self.enrollment.patients.enrollment_id(external_id, plan_id)
        except NotFoundError:
            return None
        return self.enrollment.current_input(enrollment_id)

    def _refuse_duplicate_person(self, event: AppointmentEvent, entry: ValidEnrollment) -> None:
        """Someone with this phone and first name is enrolled under another id: flag, refuse."""
        record = entry.record
        if record.phone is None:
            return
        others = [
            person
            for person in self.feeds.enrolled_with_phone(record.phone)
            if person.external_id != record.external_id
            and person.first_name.casefold() == record.first_name.casefold()
        ]
        if not others:
            return
        self.flags.create_flags(
            [
                NewFlag(
                    person.patient_id,
                    FlagKind.DUPLICATE_PERSON,
                    f"a {event.source} booking for patient id {record.external_id} has the same "
                    f"name and phone as this patient ({person.external_id}); not enrolled twice",
                )
                for person in others
            ],
            self.clock(),
        )
        ids = ", ".join(person.external_id for person in others)
        raise Refusal(
            f"possible duplicate: the same name and phone are enrolled under id {ids}; "
            "flagged for staff, not enrolled"
        )

    # -- log ------------------------------------------------------------------------------

    def _log_line(
        self, event: AppointmentEvent, result: FeedResult, raw: str | None, actor: str
    ) -> FeedMessageRecord:
        return FeedMessageRecord(
            0,
            event.source,
            event.sender,
            event.message_id,
            actor,
            self.clock(),
            utc_or_none(event.sent_at),
            event.event_code or event.action.value,
            event.appointment_id,
            result.external_id,
            result.plan_id,
            result.outcome,
            result.ack_code,
            result.detail,
            raw,
        )

    def _purge_old_raw(self) -> None:
        now = self.clock()
        if self._last_purge is None or now - self._last_purge >= timedelta(hours=1):
            self.feeds.purge_raw(now - self.keep_raw)
            self._last_purge = now


def _halted_and_unmoved(
    event: AppointmentEvent, known: AppointmentRecord | None, plan_id: str, start_at: datetime
) -> AppointmentStatus | None:
    """The appointment's cancelled or no-show status when this event (S13/S14, or a FHIR
    Appointment sent again as booked) modifies it without moving it (same plan, same start):
    such a message books nothing again. One that moves the start restarts, for both feeds."""
    if event.action is not AppointmentAction.MOVED or known is None or known.start_at is None:
        return None
    if known.status not in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW):
        return None
    if known.plan_id != plan_id or known.start_at != start_at.astimezone(UTC):
        return None
    return known.status


def _record(
    event: AppointmentEvent,
    known: AppointmentRecord | None,
    external_id: str | None,
    plan_id: str | None,
    status: AppointmentStatus,
    start_at: datetime | None,
    sent_at: datetime | None,
) -> AppointmentRecord:
    last = sent_at
    if known and known.last_sent_at and (last is None or known.last_sent_at > last):
        last = known.last_sent_at
    return AppointmentRecord(
        event.source,
        event.sender,
        event.appointment_id,
        external_id or (known.external_id if known else None),
        plan_id or (known.plan_id if known else None),
        status,
        start_at.astimezone(UTC) if start_at else None,
        last,
    )
