"""Whether the clinic may text a patient: the one place SMS stops, and starts again.

`resume` is the one way back (START by text, staff in the console, the API or the CLI): the
patient is opted in and every message SMS stopping held back comes back while its window is
still open, except what staff cancelled and steps that went, or will go, by another channel.

Three paths learn that a patient must not be texted: an error while sending (the dispatcher),
a delivery report that arrives later, and an inbound STOP. Each calls `SmsConsentService.stop`
with what it learned, so the same event leaves the same state: the patient's opt-out or
unusable number with its date, an event naming the source, pending SMS moved to email where
the plan allows or skipped with a reason that says what happened, and an audit entry in the
name of whoever (or whatever) acted. Provider codes are read by the channel, never here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.clock import utc_now
from reminders.enrollment import EnrollmentService
from reminders.errors import FailureKind, NotFoundError, ReminderError
from reminders.inputs import staff_text
from reminders.plans.model import StepChannel
from reminders.schedule_diff import ChangeAction
from reminders.store.reply_records import NewFlag, NewInbound, SmsStateChange, SmsStop, SmsStopKind
from reminders.store.storage import Storage

log = logging.getLogger(__name__)


class StopVia(StrEnum):
    """How the service learned that SMS must stop."""

    TEXT = "text"  # the patient texted a stop word to the clinic's number
    SEND_ERROR = "send error"  # the provider refused a send
    DELIVERY_REPORT = "delivery report"  # a later delivery report from the provider


@dataclass(frozen=True)
class StopCause:
    """What was learned: the kind of stop, how, the keyword or provider code, and (for a
    provider code) what it means in words, as the channel describes it."""

    kind: SmsStopKind
    via: StopVia
    code: str
    meaning: str = ""

    @property
    def source(self) -> str:
        """The event's source: the keyword texted, or where a provider code came from."""
        return self.code if self.via is StopVia.TEXT else f"{self.via} {self.code}"

    def reason(self, at: datetime) -> str:
        """Why pending SMS are skipped: what happened, and when."""
        day = f"{at:%Y-%m-%d}"
        if self.kind is SmsStopKind.OPTED_OUT and self.via is StopVia.TEXT:
            return f"opted out of SMS by text on {day} ({self.code})"
        if self.kind is SmsStopKind.OPTED_OUT:
            return f"opted out of SMS at the carrier on {day} ({self.source})"
        meaning = self.meaning or f"refused by the provider ({self.code})"
        return f"no valid phone number since {day}: {meaning}, per {self.via}"


def stop_kind_of(failure: FailureKind) -> SmsStopKind | None:
    """Whether a provider failure, as the channel classified it, stops texting the number."""
    if failure is FailureKind.OPTED_OUT:
        return SmsStopKind.OPTED_OUT
    if failure is FailureKind.INVALID_NUMBER:
        return SmsStopKind.NUMBER_UNUSABLE
    return None


@dataclass(frozen=True)
class SmsResume:
    """What opting back in did: the patients who were opted out, and how many of their
    messages came back."""

    opted_in: list[int]
    restored: int


AUDIT_ACTIONS = {
    SmsStopKind.OPTED_OUT: "sms.opt_out",
    SmsStopKind.NUMBER_UNUSABLE: "sms.number_unusable",
}


class SmsConsentService:
    """Stops SMS to patients (every path goes through `stop`), recorded as `audit`'s actor."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        audit: AuditTrail,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = storage.database
        self.consent = storage.consent
        self.inbound = storage.inbound
        self.patients = storage.patients
        self.catalog = catalog
        self.audit = audit
        self.clock = clock
        self.enrollment = EnrollmentService(storage, catalog, clock=clock, audit=audit)

    def stop(
        self,
        cause: StopCause,
        *,
        patient_ids: Collection[int] = (),
        number: str | None = None,
        inbound: NewInbound | None = None,
        flags: Iterable[NewFlag] = (),
    ) -> SmsStop:
        """Stop texting these patients and everyone else on `number` (an opt-out and a dead
        number belong to the phone, not to one enrollment).

        `inbound`, the text that asked, is recorded with the change, with the `flags` it raised.
        The text, the stop and its audit entries are one transaction.
        """
        now = self.clock()
        change = SmsStateChange(cause.kind, cause.source, now, cause.reason(now))
        email_steps = self.email_steps()
        with self.database.transaction():
            # The patients first, then the number, as an enroll takes them.
            self.patients.lock_patients(patient_ids, [number] if number else [])
            if number:
                # An enroll giving this number in flight commits first, or sees this stop.
                self.inbound.lock_numbers([number])
            stop = self.consent.stop_sms(
                list(dict.fromkeys(patient_ids)),
                change,
                numbers=[number] if number else [],
                email_steps=email_steps,
                inbound=inbound,
                flags=flags,
            )
            detail = (
                f"{change.reason}; pending SMS: {stop.skipped} skipped, "
                f"{stop.moved_to_email} moved to email"
            )
            self.audit.record_many(
                (AUDIT_ACTIONS[cause.kind], stop.external_ids[pid], detail)
                for pid in stop.changed
                if pid in stop.external_ids
            )
        log.info(
            "SMS stopped (%s, %s) for %d patient(s)",
            cause.kind.value,
            cause.source,
            len(stop.external_ids),
        )
        return stop

    def resume(
        self, patient_ids: Collection[int], *, source: str, inbound: NewInbound | None = None
    ) -> SmsResume:
        """Opt patients back in to SMS and bring back what stopping held back.

        Every message SMS stopping skipped comes back while its window is still open (a
        reschedule in between included); what staff cancelled stays cancelled, and a step
        moved to email (or sent by it) is not sent again by SMS. `source` names how the
        patient opted in (the keyword texted, or "staff"); `inbound`, the text that asked, is
        recorded with the change. The text, the opt-in, the re-plan and the audit entries are
        one transaction: a failure leaves the patient opted out, so that trying again restores
        the messages.
        """
        ids = list(dict.fromkeys(patient_ids))
        with self.database.transaction():
            changed = self.consent.resume_sms(ids, source=source, now=self.clock(), inbound=inbound)
            restored = {patient_id: self._replan(patient_id) for patient_id in changed}
            self.audit.record_many(
                (
                    "sms.opt_in",
                    external_id,
                    f"opted back in to SMS ({source}); {restored[pid]} message(s) restored",
                )
                for pid, external_id in changed.items()
            )
        return SmsResume(list(changed), sum(restored.values()))

    def resume_patient(self, external_id: str, *, note: str = "") -> SmsResume:
        """Staff opt a patient back in (they agreed again, by phone or in person): `resume`
        by the clinic's id, with staff's note in the source the opt-out events keep."""
        state = self.patients.patient_states([external_id]).get(external_id)
        if state is None:
            raise NotFoundError(f"no patient '{external_id}'")
        note = " ".join(staff_text("note", note).split())
        return self.resume([state.patient_id], source=f"staff: {note}" if note else "staff")

    def _replan(self, patient_id: int) -> int:
        """Re-plan a patient's active enrollments as opted in; how many messages came back.
        A plan that cannot be loaded leaves its messages as they are (logged)."""
        restored = 0
        for enrollment_id in self.patients.active_enrollments([patient_id]):
            try:
                valid = self.enrollment.validate(self.enrollment.current_input(enrollment_id))
                outcomes = self.enrollment.enroll([valid], action="replan", opting_in=True)
            except ReminderError as exc:
                log.warning("enrollment %s: could not re-plan (%s)", enrollment_id, exc)
                continue
            restored += sum(
                1 for o in outcomes for c in o.changes if c.action is ChangeAction.RESTORE
            )
        return restored

    def email_steps(self) -> set[tuple[str, str]]:
        """(plan, step) pairs that may go by email instead of SMS (the patient's choice)."""
        try:
            plans = [self.catalog.get(plan_id).plan for plan_id in self.catalog.ids()]
        except ReminderError as exc:
            log.warning("plans unavailable; pending SMS will be skipped, not moved: %s", exc)
            return set()
        return {
            (plan.id, step.id)
            for plan in plans
            for step in plan.steps
            if plan.channel_of(step) is StepChannel.PREFERRED
        }
