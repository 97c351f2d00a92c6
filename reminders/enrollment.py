"""Enroll, reschedule and cancel patients: validated input -> computed schedule -> store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any

from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.clock import utc_now
from reminders.errors import EnrollmentError, InputProblem
from reminders.patients import EnrollmentInput, parse_enrollment
from reminders.plans.model import Phase, Plan
from reminders.plans.versions import schedule_digest
from reminders.schedule import ScheduleInput, compute_schedule, skip_past_windows
from reminders.store.records import (
    EnrollmentOutcome,
    EnrollmentRequest,
    PatientRecord,
    PatientState,
)
from reminders.store.storage import Storage

INPUT_FIELDS = (
    "external_id",
    "first_name",
    "phone",
    "email",
    "timezone",
    "language",
    "preferred_channel",
    "sms_consent",
    "attributes",
)


@dataclass(frozen=True)
class ValidEnrollment:
    """Input that passed validation, ready to schedule."""

    item: EnrollmentInput
    record: PatientRecord


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


class EnrollmentService:
    """The operations staff perform on patients, shared by the CLI, CSV import and HTTP API."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        *,
        default_region: str = "US",
        clock: Callable[[], datetime] = utc_now,
        audit: AuditTrail | None = None,
    ) -> None:
        self.patients = storage.patients
        self.inbound = storage.inbound
        self.catalog = catalog
        self.default_region = default_region
        self.clock = clock
        self.audit = audit  # every front end passes one (App.enrollment); bare tests may not

    def validate(self, data: dict[str, Any], row: int | None = None) -> ValidEnrollment:
        """Validate one input record, including that its plan exists."""
        plan = data.get("plan")
        unknown_plan = []
        if isinstance(plan, str) and plan.strip() and plan.strip() not in self.catalog.ids():
            known = ", ".join(self.catalog.ids())
            unknown_plan = [InputProblem("plan", f"no plan '{plan.strip()}' (plans: {known})")]
        try:
            item, record = parse_enrollment(data, self.default_region, row)
        except EnrollmentError as exc:
            raise EnrollmentError(unknown_plan + exc.problems, row) from None
        if unknown_plan:
            raise EnrollmentError(unknown_plan, row)
        return ValidEnrollment(item, record)

    def enroll(
        self,
        entries: Sequence[ValidEnrollment],
        *,
        dry_run: bool = False,
        action: str | None = None,
    ) -> list[EnrollmentOutcome]:
        """Enroll (or update) validated patients; idempotent by external id and plan.

        Each change is recorded in the audit log as `action` (default: enroll or update).
        """
        now = self.clock()
        states = self.patients.patient_states(e.record.external_id for e in entries)
        stopped = self._numbers_that_stopped(entries, states)
        requests = []
        for entry in entries:
            plan = self.catalog.get(entry.item.plan).plan
            state = states.get(entry.record.external_id)
            renumbered = refused_number_replaced(entry.record, state)
            if renumbered and state is not None:
                state = replace(state, phone_invalid_at=None)
            enrollment = schedule_input(
                plan, entry.record, entry.item.procedure_date, entry.item.procedure_time, state
            )
            if entry.record.external_id in stopped:
                enrollment = replace(enrollment, sms_allowed=False)
            requests.append(
                EnrollmentRequest(
                    patient=entry.record,
                    plan_id=plan.id,
                    plan_version=plan.version,
                    plan_digest=schedule_digest(plan),
                    procedure_date=entry.item.procedure_date,
                    procedure_time=entry.item.procedure_time,
                    messages=skip_past_windows(compute_schedule(plan, enrollment), now),
                    clear_phone_invalid=renumbered,
                )
            )
        outcomes = self.patients.enroll_many(requests, now, dry_run=dry_run)
        if not dry_run:
            for outcome in outcomes:
                if outcome.external_id in stopped:
                    self.patients.mark_sms_opted_out(outcome.patient_id, now)
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
        stopped = self.inbound.opted_out_phones(list(newly_given))
        return {external_id for phone in stopped for external_id in newly_given[phone]}

    def enroll_one(self, data: dict[str, Any]) -> EnrollmentOutcome:
        """Validate and enroll one patient."""
        return self.enroll([self.validate(data)])[0]

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
        enrollment_id, plan_id = self.patients.enrollment_id(external_id, plan_id)
        entry = self._current(enrollment_id, procedure_date, procedure_time)
        return self.enroll([entry], dry_run=dry_run, action="reschedule")[0]

    def cancel(self, external_id: str, reason: str, plan_id: str | None = None) -> int:
        """Cancel a patient's enrollment; returns how many pending messages were cancelled."""
        enrollment_id, plan_id = self.patients.enrollment_id(external_id, plan_id)
        count = self.patients.cancel_enrollment(enrollment_id, reason, self.clock())
        if self.audit is not None:
            self.audit.record(
                "cancel", external_id, f"plan {plan_id}; {count} pending cancelled: {reason}"
            )
        return count

    def update_patient(
        self,
        external_id: str,
        changes: dict[str, Any],
        plan_id: str | None = None,
        *,
        dry_run: bool = True,
    ) -> EnrollmentOutcome:
        """Change a patient's details (contact, language, ...); the schedule is recomputed.

        With dry_run, only says what would change.
        """
        enrollment_id, _ = self.patients.enrollment_id(external_id, plan_id)
        current = self.current_input(enrollment_id)
        valid = self.validate({**current, **changes})
        fields = ", ".join(sorted(k for k in changes if changes[k] != current.get(k)))
        action = f"update ({fields})" if fields else "update"
        return self.enroll([valid], dry_run=dry_run, action=action)[0]

    def cancel_after_procedure(
        self, external_id: str, reason: str, plan_id: str | None = None
    ) -> tuple[int, int]:
        """Cancel the pending steps from the procedure day on (a no-show); the enrollment stays.

        Returns the patient's id and how many messages were cancelled.
        """
        enrollment_id, _ = self.patients.enrollment_id(external_id, plan_id)
        patient_id = int(self.patients.enrollment_details(enrollment_id)["patient"]["id"])
        phases = [p.value for p in Phase if p is not Phase.PRE_PROCEDURE]
        return patient_id, self.patients.cancel_pending_steps(
            enrollment_id, phases, reason, self.clock()
        )

    def apply_plan(self, plan_id: str, *, dry_run: bool) -> list[EnrollmentOutcome]:
        """Bring every active enrollment on a plan to the plan file's current version."""
        entries = [self._current(eid) for eid in self.patients.active_enrollment_ids(plan_id)]
        outcomes: list[EnrollmentOutcome] = []
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            outcomes.extend(self.enroll(batch, dry_run=dry_run, action="plan.apply"))
        return outcomes

    def current_input(self, enrollment_id: int) -> dict[str, Any]:
        """An enrollment's input as staff would submit it again (to re-plan or update it)."""
        details = self.patients.enrollment_details(enrollment_id)
        patient, enrollment = details["patient"], details["enrollment"]
        data = {key: patient[key] for key in INPUT_FIELDS}
        data["plan"] = enrollment["plan_id"]
        data["procedure_date"] = enrollment["procedure_date"]
        data["procedure_time"] = enrollment["procedure_time"]
        return data

    def _current(
        self,
        enrollment_id: int,
        procedure_date: date | None = None,
        procedure_time: time | None = None,
    ) -> ValidEnrollment:
        data = self.current_input(enrollment_id)
        data["procedure_date"] = procedure_date or data["procedure_date"]
        data["procedure_time"] = procedure_time or data["procedure_time"]
        return self.validate(data)


def _change_detail(outcome: EnrollmentOutcome, request: EnrollmentRequest) -> str:
    """What the audit log says about one enrollment change (no contact details)."""
    counts = Counter(c.action for c in outcome.changes if c.action != "keep")
    changed = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no change"
    return (
        f"plan {request.plan_id} v{request.plan_version}, procedure "
        f"{request.procedure_date.isoformat()}; messages: {changed}"
    )
