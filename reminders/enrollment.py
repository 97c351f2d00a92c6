"""Enroll, reschedule and cancel patients: validated input -> computed schedule -> store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time

from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.clock import utc_now
from reminders.enrollment_input import EnrollmentInput, PatientChanges, normalize_phone
from reminders.errors import EnrollmentError, InputProblem
from reminders.inputs import staff_text
from reminders.plans.attributes import AttributeValue, read_attributes
from reminders.plans.model import Phase, Plan
from reminders.plans.versions import schedule_digest
from reminders.schedule import PlanSchedule, ScheduleInput, skip_past_windows
from reminders.schedule_diff import ChangeAction, ScheduleChange
from reminders.store.records import (
    EnrollmentOutcome,
    EnrollmentRequest,
    EnrollmentStatus,
    PatientRecord,
    PatientState,
    StoredEnrollment,
)
from reminders.store.reply_records import SmsStateChange, SmsStopKind
from reminders.store.storage import Storage

CONSENT_REQUIRED = (
    "required with a phone number: yes if the patient agreed to receive texts, no if not "
    "(a plan may state a default: defaults.sms_consent)"
)


@dataclass(frozen=True)
class ValidEnrollment:
    """Input that passed validation against its plan, ready to schedule.

    `warnings` are kept on the enrollment and shown to staff (a language the plan lacks).
    """

    item: EnrollmentInput
    record: PatientRecord
    warnings: tuple[str, ...] = ()


def language_warning(plan: Plan, language: str) -> str | None:
    """Why messages will not be in the patient's language, or None when they will."""
    if plan.language_for(language) is not None:
        return None
    return (
        f"language '{language}' is not one of plan {plan.id}'s ({', '.join(plan.languages)}); "
        f"messages go in its default, '{plan.defaults.language}'"
    )


def schedule_input(
    plan: Plan,
    record: PatientRecord,
    procedure_date: date,
    procedure_time: time | None,
    state: PatientState | None,
) -> ScheduleInput:
    """What the pure scheduler needs, from a patient record and what we know of them."""
    opted_out = state is not None and state.sms_opted_out_at is not None
    invalid = state is not None and state.phone_invalid_at is not None
    return ScheduleInput(
        procedure_date=procedure_date,
        procedure_time=procedure_time,
        timezone=record.timezone,
        attributes=record.attributes,
        preferred_channel=record.preferred_channel,
        language=record.language,
        has_phone=record.phone is not None and not invalid,
        has_email=record.email is not None,
        sms_allowed=record.sms_consent and not opted_out,
        sms_opted_out_on=state.sms_opted_out_at.date()
        if state is not None and state.sms_opted_out_at is not None
        else None,
    )


def refused_number_replaced(record: PatientRecord, state: PatientState | None) -> bool:
    """The provider refused the patient's number and the input gives a different one: SMS may
    be tried again (whichever way the new number arrives: CLI, CSV or API)."""
    return state is not None and state.phone_invalid_at is not None and record.phone != state.phone


@dataclass(frozen=True)
class Misfit:
    """An enrolled patient whose stored input does not fit their plan any more."""

    external_id: str
    problems: list[InputProblem]

    def __str__(self) -> str:
        return f"{self.external_id}: " + "; ".join(f"{p.field}: {p.message}" for p in self.problems)


@dataclass
class PlanRollout:
    """What applying a plan version did (or would do), and who it left as they were."""

    outcomes: list[EnrollmentOutcome] = field(default_factory=list)
    misfits: list[Misfit] = field(default_factory=list)


class EnrollmentService:
    """The operations staff perform on patients, shared by the CLI, CSV import and HTTP API."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        *,
        default_region: str = "US",
        default_language: str = "en",
        clock: Callable[[], datetime] = utc_now,
        audit: AuditTrail | None = None,
    ) -> None:
        self.database = storage.database
        self.patients = storage.patients
        self.inbound = storage.inbound
        self.consent = storage.consent
        self.catalog = catalog
        self.default_region = default_region
        self.default_language = default_language
        self.clock = clock
        self.audit = audit  # every front end passes one (App.enrollment); bare tests may not

    @property
    def concurrent_writers(self) -> bool:
        """Whether `enroll` calls about different patients may run at once, each in its own
        transaction (PostgreSQL; SQLite has one writer at a time)."""
        return self.patients.database.concurrent_writers

    def validate(self, item: EnrollmentInput, row: int | None = None) -> ValidEnrollment:
        """Check an input against its plan and the clinic's region; EnrollmentError names
        every bad field (and the CSV row when given)."""
        problems: list[InputProblem] = []
        plan = self._plan(item.plan, problems)
        phone = None
        if item.phone is not None:
            try:
                phone = normalize_phone(item.phone, self.default_region)
            except ValueError as exc:
                problems.append(InputProblem("phone", str(exc)))
        consent = item.sms_consent
        if consent is None and plan is not None:
            consent = plan.defaults.sms_consent
        if consent is None and item.phone is not None:
            problems.append(InputProblem("sms_consent", CONSENT_REQUIRED))
        attributes: dict[str, AttributeValue] = dict(item.attributes)
        if plan is not None:
            attributes, misfits = read_attributes(plan.attributes, item.attributes)
            problems += [InputProblem(f"attributes.{k}", m) for k, m in misfits.items()]
        if problems:
            raise EnrollmentError(problems, row)
        language = item.language or self.default_language
        warning = language_warning(plan, language) if plan is not None else None
        record = PatientRecord(
            external_id=item.external_id,
            first_name=item.first_name,
            timezone=item.timezone,
            language=language,
            preferred_channel=item.channel,
            phone=phone,
            email=item.email,
            sms_consent=bool(consent),
            attributes=attributes,
        )
        return ValidEnrollment(item, record, (warning,) if warning else ())

    def _plan(self, plan_id: str, problems: list[InputProblem]) -> Plan | None:
        if plan_id not in self.catalog.ids():
            known = ", ".join(self.catalog.ids())
            problems.append(InputProblem("plan", f"no plan '{plan_id}' (plans: {known})"))
            return None
        return self.catalog.get(plan_id).plan

    def enroll(
        self,
        entries: Sequence[ValidEnrollment],
        *,
        dry_run: bool = False,
        action: str | None = None,
        opting_in: bool = False,
        keep_cancelled: bool = False,
    ) -> list[EnrollmentOutcome]:
        """Enroll (or update) validated patients; idempotent by external id and plan.

        Each change is recorded in the audit log as `action` (default: enroll or update).
        `opting_in`: re-plan after SMS may go again (see schedule_diff.diff_schedule).
        `keep_cancelled`: a re-plan that books nothing (details edited, a plan re-applied):
        what staff or a feed cancelled stays cancelled.

        One transaction (see `Database.transaction`): the patients, their enrollments and
        messages, the opt-out of those given a number that texted STOP, and the audit entries
        are committed together, or none of them.
        """
        with self.database.transaction():
            return self._enroll(entries, dry_run, action, opting_in, keep_cancelled)

    def _enroll(
        self,
        entries: Sequence[ValidEnrollment],
        dry_run: bool,
        action: str | None,
        opting_in: bool,
        keep_cancelled: bool = False,
    ) -> list[EnrollmentOutcome]:
        now = self.clock()
        ids = (e.record.external_id for e in entries)
        states = self.patients.patient_states(ids, lock=True)
        stopped = self._numbers_that_stopped(entries, states)
        requests = []
        # Each plan read once per call: its digest, and its steps after the plan's defaults.
        plans: dict[str, tuple[PlanSchedule, str]] = {}
        for entry in entries:
            if entry.item.plan not in plans:
                plan = self.catalog.get(entry.item.plan).plan
                plans[entry.item.plan] = (PlanSchedule(plan), schedule_digest(plan))
            schedule, digest = plans[entry.item.plan]
            plan = schedule.plan
            state = states.get(entry.record.external_id)
            renumbered = refused_number_replaced(entry.record, state)
            if renumbered and state is not None:
                state = replace(state, phone_invalid_at=None)
            enrollment = schedule_input(
                plan, entry.record, entry.item.procedure_date, entry.item.procedure_time, state
            )
            if entry.record.external_id in stopped:
                enrollment = replace(enrollment, sms_allowed=False, sms_opted_out_on=now.date())
            requests.append(
                EnrollmentRequest(
                    patient=entry.record,
                    plan_id=plan.id,
                    plan_version=plan.version,
                    plan_digest=digest,
                    procedure_date=entry.item.procedure_date,
                    procedure_time=entry.item.procedure_time,
                    messages=skip_past_windows(schedule.compute(enrollment), now),
                    clear_phone_invalid=renumbered,
                    opting_in=opting_in,
                    keep_cancelled=keep_cancelled,
                    warnings=entry.warnings,
                )
            )
        outcomes = self.patients.enroll_many(requests, now, dry_run=dry_run, states=states)
        if not dry_run:
            given_a_stopped_number = [o.patient_id for o in outcomes if o.external_id in stopped]
            if given_a_stopped_number:
                reason = f"opted out of SMS on {now:%Y-%m-%d}: this number texted STOP before"
                self.consent.stop_sms(
                    given_a_stopped_number,
                    SmsStateChange(SmsStopKind.OPTED_OUT, "earlier STOP", now, reason),
                )
            self._record(outcomes, requests, action)
        return outcomes

    def _record(
        self,
        outcomes: Sequence[EnrollmentOutcome],
        requests: Sequence[EnrollmentRequest],
        action: str | None,
    ) -> None:
        if self.audit is None:
            return
        self.audit.record_many(
            (
                action or ("enroll" if outcome.created else "update"),
                outcome.external_id,
                _change_detail(outcome, request),
            )
            for outcome, request in zip(outcomes, requests, strict=True)
        )

    def _numbers_that_stopped(
        self, entries: Sequence[ValidEnrollment], states: dict[str, PatientState]
    ) -> set[str]:
        """External ids of patients newly given a number that texted STOP: opted out too."""
        newly_given: dict[str, list[str]] = {}
        for entry in entries:
            record, state = entry.record, states.get(entry.record.external_id)
            if record.phone is None or (state is not None and state.sms_opted_out_at):
                continue
            if state is None or state.phone != record.phone:
                newly_given.setdefault(record.phone, []).append(record.external_id)
        if not newly_given:
            return set()
        # Before asking: a STOP for one of them in flight commits first, or sees this patient.
        self.inbound.lock_numbers(list(newly_given))
        stopped = self.inbound.opted_out_phones(list(newly_given))
        return {external_id for phone in stopped for external_id in newly_given[phone]}

    def enroll_one(self, item: EnrollmentInput) -> EnrollmentOutcome:
        """Validate and enroll one patient."""
        return self.enroll([self.validate(item)])[0]

    def reschedule(
        self,
        external_id: str,
        procedure_date: date,
        procedure_time: time | None = None,
        plan_id: str | None = None,
    ) -> EnrollmentOutcome:
        """Move a patient's procedure; pending messages are recomputed, sent ones stay."""
        return self.preview_reschedule(
            external_id, procedure_date, procedure_time, plan_id, dry_run=False
        )

    def preview_reschedule(
        self,
        external_id: str,
        procedure_date: date,
        procedure_time: time | None = None,
        plan_id: str | None = None,
        *,
        dry_run: bool = True,
    ) -> EnrollmentOutcome:
        """What a reschedule would change (with dry_run=False: make the change)."""
        with self.database.transaction():
            enrollment_id, plan_id = self.patients.enrollment_id(external_id, plan_id)
            entry = self._current(enrollment_id, procedure_date, procedure_time)
            return self.enroll([entry], dry_run=dry_run, action="reschedule")[0]

    def cancel(self, external_id: str, reason: str, plan_id: str | None = None) -> int:
        """Cancel a patient's enrollment; returns how many pending messages were cancelled.

        The cancellation and its audit entry are one transaction."""
        reason = staff_text("reason", reason)
        with self.database.transaction():
            enrollment_id, plan_id = self.patients.enrollment_id(external_id, plan_id)
            count = self.patients.cancel_enrollment(enrollment_id, reason, self.clock())
            if self.audit is not None:
                self.audit.record(
                    "cancel", external_id, f"plan {plan_id}; {count} pending cancelled: {reason}"
                )
            return count

    def preview_cancel(self, external_id: str, plan_id: str | None = None) -> list[ScheduleChange]:
        """What cancelling would change: every message not sent yet is cancelled."""
        enrollment_id, _ = self.patients.enrollment_id(external_id, plan_id)
        return [
            ScheduleChange(step_id, ChangeAction.CANCEL, due_at, None)
            for step_id, due_at in self.patients.pending_steps(enrollment_id)
        ]

    def update_patient(
        self,
        external_id: str,
        changes: PatientChanges,
        plan_id: str | None = None,
        *,
        dry_run: bool = True,
    ) -> EnrollmentOutcome:
        """Change a patient's details (contact, language, ...); the schedule is recomputed.

        With dry_run, only says what would change. What was cancelled stays cancelled unless the
        change moves the procedure; a cancelled enrollment is refused (enrolling the patient
        again, or a reschedule, restarts it).
        """
        with self.database.transaction():
            enrollment_id, _ = self.patients.enrollment_id(external_id, plan_id)
            stored = self.patients.enrollment_details(enrollment_id).enrollment
            if stored.status is EnrollmentStatus.CANCELLED:
                raise EnrollmentError([InputProblem("enrollment", _cancelled(stored))])
            current = self.current_input(enrollment_id)
            updated = changes.applied_to(current)
            valid = self.validate(updated)
            changed = changes.changed_fields(current)
            fields = ", ".join(changed)
            action = f"update ({fields})" if fields else "update"
            moved = bool({"procedure_date", "procedure_time"} & set(changed))
            return self.enroll([valid], dry_run=dry_run, action=action, keep_cancelled=not moved)[0]

    def cancel_after_procedure(
        self, external_id: str, reason: str, plan_id: str | None = None
    ) -> tuple[int, int]:
        """Cancel the pending steps from the procedure day on (a no-show); the enrollment stays.

        Returns the patient's id and how many messages were cancelled. The cancellation and
        its audit entry are one transaction.
        """
        reason = staff_text("reason", reason)
        with self.database.transaction():
            enrollment_id, plan_id = self.patients.enrollment_id(external_id, plan_id)
            patient_id = self.patients.enrollment_details(enrollment_id).patient.id
            phases = [p.value for p in Phase if p is not Phase.PRE_PROCEDURE]
            count = self.patients.cancel_pending_steps(enrollment_id, phases, reason, self.clock())
            if self.audit is not None:
                self.audit.record(
                    "cancel.after_procedure",
                    external_id,
                    f"plan {plan_id}; {count} pending from the procedure day cancelled: {reason}",
                )
            return patient_id, count

    def apply_plan(self, plan_id: str, *, dry_run: bool) -> PlanRollout:
        """Bring every active enrollment on a plan to the plan file's current version.

        An enrollment whose stored input no longer fits the plan (an attribute it stopped
        declaring, a value its type does not take) is left as it is and listed as a misfit.
        Each batch of 1,000 enrollments is one transaction with its audit entries (one for all
        would keep other writers waiting until the end): an error leaves the batches before it
        applied and recorded, and applying again brings the rest.
        """
        rollout = PlanRollout()
        entries = []
        for enrollment_id in self.patients.active_enrollment_ids(plan_id):
            try:
                entries.append(self._current(enrollment_id))
            except EnrollmentError as exc:
                external_id = self.current_input(enrollment_id).external_id
                rollout.misfits.append(Misfit(external_id, exc.problems))
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            rollout.outcomes.extend(
                self.enroll(batch, dry_run=dry_run, action="plan.apply", keep_cancelled=True)
            )
        return rollout

    def current_input(self, enrollment_id: int) -> EnrollmentInput:
        """An enrollment's input as staff would submit it again (to re-plan or update it).

        Built without validating again: it was validated when it was given, and a re-plan must
        not stop on a rule added since.
        """
        details = self.patients.enrollment_details(enrollment_id)
        patient, enrollment = details.patient, details.enrollment
        return EnrollmentInput.model_construct(
            external_id=patient.external_id,
            first_name=patient.first_name,
            phone=patient.phone,
            email=patient.email,
            timezone=patient.timezone,
            language=patient.language,
            preferred_channel=patient.preferred_channel,
            sms_consent=patient.sms_consent,
            plan=enrollment.plan_id,
            procedure_date=enrollment.procedure_date,
            procedure_time=enrollment.procedure_time,
            attributes=dict(patient.attributes),
        )

    def _current(
        self,
        enrollment_id: int,
        procedure_date: date | None = None,
        procedure_time: time | None = None,
    ) -> ValidEnrollment:
        item = self.current_input(enrollment_id)
        moved = item.model_copy(
            update={
                "procedure_date": procedure_date or item.procedure_date,
                "procedure_time": procedure_time or item.procedure_time,
            }
        )
        return self.validate(moved)


def _cancelled(enrollment: StoredEnrollment) -> str:
    """Why a cancelled enrollment's details are not edited."""
    reason = f" ({enrollment.status_reason})" if enrollment.status_reason else ""
    return (
        f"the enrollment on plan {enrollment.plan_id} is cancelled{reason}; enroll the patient "
        "again, or reschedule, to restart their messages"
    )


def _change_detail(outcome: EnrollmentOutcome, request: EnrollmentRequest) -> str:
    """What the audit log says about one enrollment change (no contact details)."""
    counts = Counter(c.action for c in outcome.changes if c.changed)
    changed = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no change"
    return (
        f"plan {request.plan_id} v{request.plan_version}, procedure "
        f"{request.procedure_date.isoformat()}; messages: {changed}"
    )
