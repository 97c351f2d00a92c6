"""Acting on what patients text back and on the provider's delivery reports.

Inbound SMS: a stop request opts the patient out at once (pending SMS move to email or are
skipped, through `reminders.consent`), START opts back in, HELP gets the clinic's number, and
any other text is stored against the patient and the last SMS we sent them. A reply to a
relief check is read as an outcome; warning signs, no improvement, an unreadable second answer
or no answer at all raise a flag for staff. Every decision is recorded through the repositories.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.channels.twilio_sms import classify_twilio_code, describe_twilio_code
from reminders.clock import utc_now
from reminders.consent import SmsConsentService, StopCause, StopVia, stop_kind_of
from reminders.errors import AfterPassError, KeptReportsError, ReminderError, describe_error
from reminders.inputs import MAX_FLAG_NOTE, staff_text
from reminders.plans.model import Phase
from reminders.redact import mask_phone
from reminders.replies.keywords import Keyword, requested_keyword
from reminders.replies.relief import (
    RELIEF_CHECK_STEP_PREFIXES,
    is_relief_check,
    not_improved_reasons,
    parse_relief_answer,
    warning_words,
)
from reminders.replies.texts import reply_text
from reminders.settings import Settings
from reminders.store.delivery_reports import report_rank
from reminders.store.early_reports import KeptReport
from reminders.store.inbound import DuplicateInbound
from reminders.store.inbound_schema import FlagKind, InboundKind
from reminders.store.message_records import DeliveryUpdate
from reminders.store.reply_records import (
    FlagView,
    NewFlag,
    NewInbound,
    NewOutcome,
    PhoneMatch,
    SentSms,
    SmsStopKind,
)
from reminders.store.storage import Storage
from reminders.templating.context import Clinic

log = logging.getLogger(__name__)

# Unless the service is told otherwise; the setting REMINDERS_NO_REPLY_AFTER_HOURS tells it.
DEFAULT_NO_REPLY_AFTER = timedelta(hours=Settings.model_fields["no_reply_after_hours"].default)
# A kept delivery report whose send is still not recorded after this is dropped.
KEEP_EARLY_REPORTS_FOR = timedelta(days=1)


@dataclass(frozen=True)
class InboundSms:
    """An SMS a patient sent us, as the provider reports it."""

    provider_message_id: str
    from_phone: str
    to_phone: str
    body: str


@dataclass(frozen=True)
class ReplyResult:
    """What an inbound SMS was taken as, and the text to answer with (None: no answer)."""

    kind: InboundKind | Literal["duplicate"]  # duplicate: a repeat of an SMS already handled
    reply: str | None = None
    patient_id: int | None = None


def _warning_flags(body: str, patient: PhoneMatch | None, latest: SentSms | None) -> list[NewFlag]:
    """A flag asking staff to call when a text mentions a warning sign, even one that opts out."""
    signs = warning_words(body)
    if not signs or patient is None:
        return []
    return [
        NewFlag(
            patient.patient_id,
            FlagKind.WARNING_WORDS,
            f"Reply mentions {', '.join(signs)}. Please call the patient.",
            latest.id if latest else None,
        )
    ]


def _matters_that_it_arrived(update: DeliveryUpdate) -> bool:
    """A pre-procedure instruction or a relief check that did not arrive needs a call."""
    return update.phase is Phase.PRE_PROCEDURE or is_relief_check(update.step_id or "")


class ReplyService:
    """Handles inbound SMS and delivery reports; raises flags for staff."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        clinic: Clinic,
        *,
        clock: Callable[[], datetime] = utc_now,
        no_reply_after: timedelta = DEFAULT_NO_REPLY_AFTER,
    ) -> None:
        self.database = storage.database
        self.inbound = storage.inbound
        self.outcomes = storage.outcomes
        self.outbox = storage.outbox
        self.fallbacks = storage.fallbacks
        self.early_reports = storage.early_reports
        self.catalog = catalog
        self.clinic = clinic
        self.clock = clock
        self.no_reply_after = no_reply_after
        self.by_text = SmsConsentService(
            storage,
            catalog,
            AuditTrail(storage.access, Actor.system("inbound-sms"), clock),
            clock=clock,
        )
        self.by_report = SmsConsentService(
            storage,
            catalog,
            AuditTrail(storage.access, Actor.system("delivery-report"), clock),
            clock=clock,
        )

    # -- inbound SMS ------------------------------------------------------------------------

    def handle_inbound(self, sms: InboundSms) -> ReplyResult:
        """Act on one inbound SMS; a repeat of one already handled changes nothing."""
        if self.inbound.inbound_seen(sms.provider_message_id):
            return ReplyResult("duplicate")
        now = self.clock()
        matches = self.inbound.patients_for_phone(sms.from_phone)
        primary = matches[0] if matches else None
        latest = self.inbound.latest_sms(primary.patient_id, now) if primary else None
        try:
            result = self._handle(sms, now, matches, primary, latest)
        except DuplicateInbound:
            return ReplyResult("duplicate")
        log.info(
            "inbound sms %s from %s: %s%s",
            sms.provider_message_id,
            mask_phone(sms.from_phone),
            result.kind,
            " (answered)" if result.reply else "",
        )
        return result

    def _handle(
        self,
        sms: InboundSms,
        now: datetime,
        matches: list[PhoneMatch],
        primary: PhoneMatch | None,
        latest: SentSms | None,
    ) -> ReplyResult:
        language = primary.language if primary else "en"

        def record(kind: InboundKind) -> NewInbound:
            return NewInbound(
                provider_message_id=sms.provider_message_id,
                from_phone=sms.from_phone,
                to_phone=sms.to_phone,
                body=sms.body,
                received_at=now,
                kind=kind,
                patient_id=primary.patient_id if primary else None,
                in_reply_to_message_id=latest.id if latest else None,
            )

        previous = self.inbound.last_keyword_kind(sms.from_phone)
        opted_out = (
            any(m.sms_opted_out_at for m in matches) if matches else previous is InboundKind.OPT_OUT
        )
        keyword = requested_keyword(sms.body, opted_out)
        ids = [m.patient_id for m in matches]
        patient_id = primary.patient_id if primary else None
        if keyword and keyword.kind is Keyword.OPT_OUT:
            stop = self.by_text.stop(
                StopCause(SmsStopKind.OPTED_OUT, StopVia.TEXT, keyword.said),
                patient_ids=ids,
                number=sms.from_phone,
                inbound=record(InboundKind.OPT_OUT),
                flags=_warning_flags(sms.body, primary, latest),
            )
            confirm = bool(stop.changed) if matches else previous is not InboundKind.OPT_OUT
            text = reply_text("opt_out", language, self.clinic) if confirm else None
            return ReplyResult(InboundKind.OPT_OUT, text, patient_id)
        if keyword and keyword.kind is Keyword.OPT_IN:
            resumed = self.by_text.resume(
                ids, source=keyword.said, inbound=record(InboundKind.OPT_IN)
            )
            confirm = bool(resumed.opted_in) if matches else previous is InboundKind.OPT_OUT
            text = reply_text("opt_in", language, self.clinic) if confirm else None
            return ReplyResult(InboundKind.OPT_IN, text, patient_id)
        if keyword and keyword.kind is Keyword.HELP:
            self.inbound.record_inbound(record(InboundKind.HELP))
            return ReplyResult(
                InboundKind.HELP, reply_text("help", language, self.clinic), patient_id
            )
        if primary is None:
            self.inbound.record_inbound(record(InboundKind.UNMATCHED))
            return ReplyResult(InboundKind.UNMATCHED)
        return self._reply(sms, now, primary, latest, record)

    def _reply(
        self,
        sms: InboundSms,
        now: datetime,
        patient: PhoneMatch,
        latest: SentSms | None,
        record: Callable[[InboundKind], NewInbound],
    ) -> ReplyResult:
        """A free-text reply: maybe a relief-check answer; flag what staff must see."""
        kind = InboundKind.REPLY
        outcome: NewOutcome | None = None
        flags: list[NewFlag] = []
        text: str | None = None
        if (
            latest is not None
            and is_relief_check(latest.step_id)
            and not self.outcomes.has_outcome(latest.id)
        ):
            answer = parse_relief_answer(sms.body)
            if answer.understood:
                kind = InboundKind.OUTCOME
                outcome = NewOutcome(
                    patient_id=patient.patient_id,
                    message_id=latest.id,
                    step_id=latest.step_id,
                    leg_pain=answer.leg_pain,
                    walking_improved=answer.walking_improved,
                    raw=sms.body,
                    received_at=now,
                )
                earlier = self.outcomes.earlier_pain(patient.patient_id, latest.id)
                reasons = not_improved_reasons(answer, earlier.leg_pain if earlier else None)
                if reasons:
                    flags.append(
                        NewFlag(
                            patient.patient_id,
                            FlagKind.NOT_IMPROVED,
                            f"{latest.step_id}: {'; '.join(reasons)}. Please review.",
                            latest.id,
                        )
                    )
                text = reply_text("recorded", patient.language, self.clinic)
            elif self.outcomes.count_replies_to(latest.id, [InboundKind.REPLY]) == 0:
                text = reply_text("re_ask", patient.language, self.clinic)
            else:
                flags.append(
                    NewFlag(
                        patient.patient_id,
                        FlagKind.UNCLEAR_REPLY,
                        f"{latest.step_id}: the answer could not be read, even after asking "
                        "again. Please call the patient.",
                        latest.id,
                    )
                )
        flags.extend(_warning_flags(sms.body, patient, latest))
        self.inbound.record_reply(record(kind), outcome, flags)
        return ReplyResult(kind, text, patient.patient_id)

    # -- delivery reports -------------------------------------------------------------------

    def handle_status(
        self,
        provider_message_id: str,
        status: str,
        error_code: str | None,
        to: str | None = None,
    ) -> DeliveryUpdate | None:
        """Record a delivery report; a carrier opt-out or a dead number stops further SMS.

        Only the first report of an error code acts: Twilio may post a callback again, and a
        repeat must not undo a START or a number staff have since checked. Recording and
        acting are one transaction, so a report that fails half-way leaves nothing behind and
        a repeat acts on it in full.

        A report can outrun the record of its send (a dispatcher commits a batch's outcomes
        together): when the message is unknown but an SMS to `to` is still "sending", the
        report is kept and applied after the commit (`apply_early_reports`); Twilio does not
        post a status callback again on an error answer, so asking for it again would lose it.
        """
        now = self.clock()
        update = self._record_and_act(provider_message_id, status, error_code, now)
        if update is None and to:
            if self.outbox.sms_in_flight_to(to):
                log.info("status callback for %s before its send is recorded", provider_message_id)
                self.early_reports.keep(provider_message_id, status, error_code, now)
                return None
            # Its send may have been committed between the lookup and that check (the commit
            # takes the text out of "sending" and records it at once): look once more.
            update = self._record_and_act(provider_message_id, status, error_code, now)
        if update is None:
            log.info("status callback for unknown message %s", provider_message_id)
        return update

    def _record_and_act(
        self, provider_message_id: str, status: str, error_code: str | None, now: datetime
    ) -> DeliveryUpdate | None:
        """Record a report on its message and act on it, in one transaction (None, and
        nothing written, when no message has this id)."""
        with self.database.transaction():
            update = self._record_status(provider_message_id, status, error_code, now)
            if update is not None:
                self._act_on(update, status, error_code, now)
        return update

    def apply_early_reports(self, keep_for: timedelta = KEEP_EARLY_REPORTS_FOR) -> int:
        """Apply the kept reports whose send is recorded by now; how many were applied.

        Run after a dispatch pass has committed its outcomes. Only the reports whose send is
        recorded (and those too old to keep) are taken, and two dispatchers never take one
        at once; the others stay as they are. A report leaves the table in the transaction
        that applies it (`take_ready`): a dispatcher killed half-way, or a pass that fails as
        a whole (the database gone), leaves every report it took to the next pass, as if it
        had not started. They apply in the
        order of Twilio's message life (`report_rank`, then arrival), so a later "delivered"
        is not undone by an earlier "sent". One read of a usually empty table.

        Each report applies on its own (a savepoint): one that fails leaves nothing of it
        applied and stays kept for the next pass, while the others apply. Kept for
        `keep_for`, a report still not applied is dropped (logged once it is gone). Once the
        pass has committed, KeptReportsError names the reports that failed and stay kept
        (`send-due` exits 3 on it, `serve` logs it), so a stuck opt-out is not only a log line.
        """
        if not self.early_reports.any_kept():
            return 0
        now = self.clock()
        kept_until = now - keep_for
        applied = 0
        dropped: list[tuple[KeptReport, str]] = []
        failed: list[tuple[int, str, str]] = []
        with self.early_reports.take_ready(kept_until=kept_until) as taken:
            in_order = sorted(
                taken.reports, key=lambda r: (report_rank(r.status), r.received_at, r.id)
            )
            for report in in_order:
                try:
                    recorded = self._apply_kept(report, now)
                except Exception as exc:  # the reports behind it must still apply
                    if report.received_at > kept_until:  # said once the pass commits
                        status = " ".join(filter(None, (report.status, report.error_code)))
                        failed.append((report.id, status, describe_error(exc)))
                        continue
                    dropped.append((report, f"it failed to apply ({describe_error(exc)})"))
                else:
                    applied += recorded
                    if not recorded:
                        dropped.append((report, "its send was never recorded"))
                taken.remove(report)
        for report, why in dropped:
            log.warning(
                "dropped a delivery report (id %s, %s) kept since %s: %s",
                report.id,
                report.status,
                report.received_at.isoformat(timespec="seconds"),
                why,
            )
        if failed:
            raise KeptReportsError(failed, applied)
        return applied

    def _apply_kept(self, report: KeptReport, now: datetime) -> bool:
        """Record and act on one kept report, all of it or none of it (a savepoint of the
        pass's transaction); False when its send was never recorded."""
        with self.database.savepoint():
            update = self._record_and_act(
                report.provider_message_id, report.status, report.error_code, now
            )
        return update is not None

    def after_pass(self, _report: object = None) -> None:
        """What a running service does after each dispatch pass: apply the delivery reports
        that came before their send was committed, then flag relief checks left unanswered.

        Each step runs even when the other fails; then AfterPassError names what failed. The
        pass's sends are committed before this runs, and the next pass tries both again.
        """
        steps: list[tuple[str, Callable[[], object]]] = [
            ("applying the kept delivery reports", self.apply_early_reports),
            ("flagging relief checks left unanswered", self.flag_missing_replies),
        ]
        failures: list[tuple[str, Exception]] = []
        for step, run in steps:
            try:
                run()
            except Exception as exc:  # the other step must still run
                failures.append((step, exc))
        if failures:
            # Chained to the first error our own words do not explain, for serve's traceback.
            unexplained = [exc for _, exc in failures if not isinstance(exc, ReminderError)]
            raise AfterPassError(failures) from (unexplained[0] if unexplained else None)

    def _record_status(
        self, provider_message_id: str, status: str, error_code: str | None, now: datetime
    ) -> DeliveryUpdate | None:
        return self.outbox.update_delivery_status(
            provider_message_id,
            status,
            error_code,
            now,
            undelivered_reason=f"not delivered: {describe_twilio_code(error_code)}",
        )

    def _act_on(
        self, update: DeliveryUpdate, status: str, error_code: str | None, now: datetime
    ) -> None:
        """Flags, an email instead, and an SMS stop, as the recorded report calls for."""
        meaning = describe_twilio_code(error_code)
        if update.undelivered and _matters_that_it_arrived(update):
            self.outcomes.create_flags(
                [
                    NewFlag(
                        update.patient_id,
                        FlagKind.UNDELIVERED,
                        f"{update.step_id}: the text did not reach the patient ({meaning}). "
                        "Please call the patient.",
                        update.message_id,
                    )
                ],
                now,
            )
        if update.undelivered:
            self._email_instead(update.message_id, meaning, now)
        if not update.new_error:
            return
        kind = stop_kind_of(classify_twilio_code(error_code))
        if kind is not None and error_code:
            self.by_report.stop(
                StopCause(kind, StopVia.DELIVERY_REPORT, error_code, meaning),
                patient_ids=[update.patient_id],
                number=update.recipient,
            )
            log.info("message %s: %s (%s); SMS stopped", update.message_id, status, error_code)

    def _email_instead(self, message_id: int, meaning: str, now: datetime) -> None:
        """Where the plan allows it (`email_if_undelivered`), a step whose text did not arrive
        goes again by email: once, to a patient with an address, while its window is open."""
        try:
            plans = [self.catalog.get(plan_id).plan for plan_id in self.catalog.ids()]
        except ReminderError as exc:
            log.warning("plans unavailable; no email fall-back for message %s: %s", message_id, exc)
            return
        steps = {
            (plan.id, step.id)
            for plan in plans
            for step in plan.steps
            if plan.email_if_undelivered(step)
        }
        reason = f"sent by email: the text did not reach the patient ({meaning})"
        queued = self.fallbacks.add_email_fallback(message_id, steps=steps, now=now, reason=reason)
        if queued is not None:
            log.info("message %s: undelivered; its step goes by email (%s)", message_id, queued)

    # -- flags ------------------------------------------------------------------------------

    def flag_missing_replies(
        self, now: datetime | None = None, after: timedelta | None = None
    ) -> int:
        """Flag every relief check left unanswered for `after` (by default the service's
        `no_reply_after`); returns how many were flagged.

        Cheap enough to run on every dispatch pass; each relief check is flagged once.
        """
        now = now or self.clock()
        after = self.no_reply_after if after is None else after
        missing = self.outcomes.relief_checks_without_reply(now - after, RELIEF_CHECK_STEP_PREFIXES)
        hours = int(after.total_seconds() // 3600)
        self.outcomes.create_flags(
            [
                NewFlag(
                    sms.patient_id,
                    FlagKind.NO_REPLY,
                    f"{sms.step_id}: no reply within {hours} h. Please call the patient.",
                    sms.id,
                )
                for sms in missing
            ],
            now,
        )
        return len(missing)

    # -- staff ------------------------------------------------------------------------------

    def resolve_flag(self, flag_id: int, note: str, audit: AuditTrail) -> FlagView:
        """Staff dealt with a flag: record who, when and their note."""
        note = staff_text("note", note.strip(), MAX_FLAG_NOTE)
        flag = self.outcomes.resolve_flag(flag_id, self.clock(), str(audit.actor), note or None)
        audit.record("flag.resolve", flag.external_id, f"flag {flag.id} ({flag.kind}): {note}")
        return flag
