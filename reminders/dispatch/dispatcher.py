"""One worker's pass over the outbox: claim due messages, decide, render, send, record.

Exactly-once: a message is claimed (status "sending") and committed before it is handed to
the provider, and its outcome is committed right after. A worker that dies in between leaves
the row in "sending"; after `claim_timeout` another pass reconciles it with the provider
(`Channel.find_sent`) and records it as sent if the provider has it. Only a channel that
cannot look back (SMTP) sends again, with the same Message-ID so mail clients drop the copy.
Whenever the outcome of a send is unknown (an unexpected error, a timeout) or the provider
cannot be asked, the row is left in "sending" for that same reconciliation, never resent
blindly. A worker renews its claim before acting on a message that waited long in its batch,
so `claim_timeout` only has to outlast one send (the Twilio channel's timeout is 15 s).

Outcomes are committed in groups: once per claimed batch, or sooner when the oldest has waited
`group_outcomes_for` (one commit per message was most of a pass's time on PostgreSQL). A crash
before the commit leaves those rows "sending" too, so the same reconciliation settles them:
a killed worker costs at most one batch of provider look-ups, as a crash right after a claim
always did. A channel that cannot look back (`Channel.group_outcomes` false: SMTP) has each
send committed at once, so a crash resends no more emails than before.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import partial
from zoneinfo import ZoneInfo

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.clock import utc_now
from reminders.consent import SmsConsentService, StopCause, StopVia, stop_kind_of
from reminders.dispatch.health import ChannelHealth
from reminders.dispatch.ratelimit import RateLimiter
from reminders.dispatch.retry import retry_at
from reminders.errors import DeliveryError, FailureKind, NotFoundError, PlanError
from reminders.plans.model import Phase, Plan
from reminders.redact import mask_address
from reminders.schedule import SendAction, decide_send, resolve_local, waits_until
from reminders.store.inbound_schema import FlagKind
from reminders.store.message_records import ClaimedMessage
from reminders.store.reply_records import NewFlag
from reminders.store.schema import EnrollmentStatus
from reminders.store.storage import Storage
from reminders.templating.context import Clinic, PatientFacts, render_step
from reminders.templating.render import RenderedMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    """Knobs of the dispatcher, usually taken from `reminders.settings.Settings`."""

    clinic: Clinic
    batch_size: int = 200
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    claim_timeout: timedelta = timedelta(minutes=2)
    group_outcomes_for: timedelta = timedelta(milliseconds=100)
    per_second: dict[str, float] = field(default_factory=dict)
    # A message that waited this long in its batch is read again before it is acted on.
    reread_after: timedelta = timedelta(seconds=1)


@dataclass(frozen=True)
class SmsHistory:
    """SMS already sent to one patient, for the opt-out line and frequency caps."""

    total: int
    today: int
    this_week: int


class SmsLedger:
    """When each patient of a claimed batch was sent an SMS; read once, kept up to date."""

    def __init__(self, sent_at: dict[int, list[datetime]]) -> None:
        self._sent_at = sent_at

    def history(self, patient_id: int, day_start: datetime, week_start: datetime) -> SmsHistory:
        """Counts of SMS sent ever, since `day_start` and since `week_start`."""
        sent = self._sent_at.get(patient_id, [])
        return SmsHistory(
            total=len(sent),
            today=sum(1 for at in sent if at >= day_start),
            this_week=sum(1 for at in sent if at >= week_start),
        )

    def add(self, patient_id: int, at: datetime) -> None:
        """Count an SMS just sent."""
        self._sent_at.setdefault(patient_id, []).append(at)


class Attempt(StrEnum):
    """What became of one claimed message in a pass."""

    SENT = "sent"
    RECONCILED = "reconciled"  # a lost send found at the provider: recorded, not resent
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"  # refused for now; tried again later
    UNSETTLED = "unsettled"  # outcome unknown: left "sending" for reconciliation
    TAKEN_OVER = "taken-over"  # another worker holds the claim now
    CHANNEL_STOPPED = "channel-stopped"  # its channel cannot send until staff fix settings


@dataclass
class PassReport:
    """What one pass did, by outcome."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Attempt) -> None:
        """Count one message's outcome."""
        self.outcomes[outcome] += 1

    @property
    def handled(self) -> int:
        """Messages this pass took a decision on."""
        return sum(self.outcomes.values())


def new_worker_id() -> str:
    """A name for this worker that is unique across machines and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Sends due messages through the channels, recording every outcome in the store."""

    def __init__(
        self,
        storage: Storage,
        catalog: PlanCatalog,
        channels: dict[str, Channel],
        settings: DispatchSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        worker_id: str | None = None,
        health: ChannelHealth | None = None,
    ) -> None:
        self.outbox = storage.outbox.grouped(clock)
        self.outcomes = storage.outcomes
        self.catalog = catalog
        self.consent = SmsConsentService(
            storage,
            catalog,
            AuditTrail(storage.access, Actor.system("dispatcher"), clock),
            clock=clock,
        )
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.health = health or ChannelHealth(list(channels))
        self.limiters = {name: RateLimiter(settings.per_second.get(name)) for name in channels}

    def run_once(self, max_messages: int | None = None) -> PassReport:
        """Reconcile stale claims, then send everything due now; returns what happened."""
        report = PassReport()
        try:
            self.recover_stale(report)
            while max_messages is None or report.handled < max_messages:
                limit = self.settings.batch_size
                if max_messages is not None:
                    limit = min(limit, max_messages - report.handled)
                claim = self.outbox.claim_batch(self.clock(), self.worker_id, limit)
                if not claim.messages:
                    break
                ledger = SmsLedger(claim.sms_sent_at)
                for message in claim.messages:
                    report.add(self._guarded(message, partial(self._process, message, ledger)))
                    if self.outbox.outcomes_waited() >= self.settings.group_outcomes_for:
                        self._flush()
                self._flush()
        finally:
            self._flush()
        return report

    def _flush(self) -> None:
        """Commit the outcomes held so far; if that fails their rows stay "sending" and are
        reconciled like after a crash, and the pass goes on."""
        try:
            self.outbox.flush_outcomes()
        except Exception:
            log.exception("outcomes not recorded; their messages are left for reconciliation")

    def recover_stale(self, report: PassReport) -> None:
        """Find messages a dead worker left in "sending" and settle each exactly once."""
        now = self.clock()
        for message in self.outbox.stale_claims(now - self.settings.claim_timeout):
            if not self.outbox.reclaim(message.id, self.worker_id, message.claimed_at, now):
                continue
            held = replace(message, claimed_at=now)
            # A renewed or reclaimed claim hides when the lost send began; never before due_at.
            since = min(message.claimed_at, message.due_at) - timedelta(minutes=1)
            report.add(self._guarded(held, partial(self._settle_unknown, held, since)))
            self._flush()  # one by one: the next look-up counts this patient's texts

    def _guarded(self, message: ClaimedMessage, settle: Callable[[], Attempt]) -> Attempt:
        """Settle one message; an unexpected error leaves it "sending" for reconciliation
        (as a crash would), and the pass goes on with the others."""
        try:
            return settle()
        except Exception:
            log.exception("message %s: unexpected error; left for reconciliation", message.id)
            return Attempt.UNSETTLED

    def _settle_unknown(self, message: ClaimedMessage, since: datetime) -> Attempt:
        """Ask the provider whether a message whose outcome was lost went out, before resending.

        The lost send may have been the patient's first SMS (with the opt-out line) or not,
        so both renderings are looked for. When the provider cannot be asked, the message
        stays "sending" and is asked about again after `claim_timeout`, until its window ends.
        """
        now = self.clock()
        try:
            plan = self._plan(message)
            variants = [self._outgoing(message, plan, first_sms=True)]
            if message.channel == "sms":
                variants.append(self._outgoing(message, plan, first_sms=False))
        except Exception as exc:  # a plan or template failure fails this message only
            return self._render_failed(message, now, exc)
        channel = self.channels[message.channel]
        for outgoing in variants:
            try:
                receipt = channel.find_sent(outgoing, since)
            except DeliveryError as exc:
                if now >= message.send_before:
                    reason = f"outcome unknown: could not ask the provider ({exc})"
                    self.outbox.record_failed(
                        message.id, now, reason, exc.code, worker=self.worker_id
                    )
                    return Attempt.FAILED
                log.warning("message %s: could not reconcile (%s); later", message.id, exc)
                return Attempt.UNSETTLED
            if receipt is not None:
                self._record_sent(
                    message, outgoing, receipt, "reconciled with the provider after a restart"
                )
                return Attempt.RECONCILED
        log.info("message %s: not found at the provider after a restart; sending", message.id)
        return self._process(message)

    def process(self, message: ClaimedMessage) -> Attempt:
        """Decide, act on and record one claimed message; returns the outcome's name."""
        try:
            return self._process(message)
        finally:
            self._flush()

    def _process(self, message: ClaimedMessage, ledger: SmsLedger | None = None) -> Attempt:
        """Decide and act on one claimed message; its outcome waits for the next flush."""
        current = self._current(message)
        held = self._hold(current) if current is not None else None
        if held is None:
            log.warning("message %s: claim taken over by another worker; left to it", message.id)
            return Attempt.TAKEN_OVER
        message = held
        now = self.clock()
        if ledger is None:
            ledger = SmsLedger(
                self.outbox.sms_sent_at([message.patient_id], excluding=[message.id])
            )
        if message.enrollment_status is not EnrollmentStatus.ACTIVE:
            self.outbox.record_skipped(
                message.id, now, "enrollment cancelled", worker=self.worker_id
            )
            return Attempt.SKIPPED
        try:
            plan = self._plan(message)
        except (PlanError, NotFoundError) as exc:
            at = retry_at(now, message.attempts, self.settings.retry_base_seconds)
            self.outbox.record_retry(
                message.id, now, at, f"plan unavailable: {exc}", worker=self.worker_id
            )
            return Attempt.RETRY
        decision = decide_send(
            now, message.due_at, message.send_before, message.timezone, plan.defaults.quiet_hours
        )
        if decision.action is SendAction.SKIP:
            self.outbox.record_skipped(
                message.id, now, decision.reason or "too late", worker=self.worker_id
            )
            return Attempt.SKIPPED
        if decision.action is SendAction.DEFER:
            assert decision.at is not None
            reason = (
                f"{decision.reason or 'deferred'}; {waits_until(decision.at, message.timezone)}"
            )
            self.outbox.record_deferred(message.id, now, decision.at, reason, worker=self.worker_id)
            return Attempt.DEFERRED
        refusal = self._refusal(message)
        if refusal:
            self.outbox.record_skipped(message.id, now, refusal, worker=self.worker_id)
            return Attempt.SKIPPED
        stopped = self.health.blocked_until(message.channel, now)
        if stopped is not None:
            assert stopped.probe_at is not None
            reason = f"waiting: the {message.channel} channel is stopped ({stopped.reason})"
            self.outbox.record_deferred(
                message.id, now, stopped.probe_at, reason, worker=self.worker_id
            )
            return Attempt.CHANNEL_STOPPED
        first_sms = False
        if message.channel == "sms":
            outcome, first_sms = self._within_caps(message, plan, now, ledger)
            if outcome:
                return outcome
        try:
            outgoing = self._outgoing(message, plan, first_sms)
        except Exception as exc:  # a template failure fails this message only
            return self._render_failed(message, now, exc)
        outcome = self._send(message, outgoing)
        if outcome in (Attempt.SENT, Attempt.UNSETTLED) and message.channel == "sms":
            ledger.add(message.patient_id, now)  # an unknown outcome counts until settled
        return outcome

    def _render_failed(self, message: ClaimedMessage, now: datetime, exc: Exception) -> Attempt:
        """A template that fails for this patient fails this message, with its file:line, and
        raises a flag: staff must fix the template (or the patient's details) and reach them.
        The failure is written before the flag, so a replay after a crash cannot flag twice."""
        reason = f"cannot render: {exc}"
        self.outbox.record_failed(message.id, now, reason, "render", worker=self.worker_id)
        self.outbox.flush_outcomes()
        detail = (
            f"{message.step_id}: the {message.channel} message could not be prepared, so "
            f"nothing was sent ({exc}). Please fix the template or the patient's details "
            "and contact the patient."
        )
        flag = NewFlag(message.patient_id, FlagKind.RENDER_FAILED, detail, message.id)
        self.outcomes.create_flags([flag], now)
        log.warning("message %s: template failed (%s)", message.id, type(exc).__name__)
        return Attempt.FAILED

    def _current(self, message: ClaimedMessage) -> ClaimedMessage | None:
        """The message as it stands now if it waited in this batch (rate limits, a slow
        provider: a batch can take a minute) for `reread_after` or more, so that a STOP, a
        cancel or a reschedule committed meanwhile counts; None when no longer ours."""
        if self.clock() - message.claimed_at < self.settings.reread_after:
            return message
        return self.outbox.reread(message.id, self.worker_id)

    def _hold(self, message: ClaimedMessage) -> ClaimedMessage | None:
        """Renew a claim that has waited half its timeout in this worker's batch, so that no
        other worker takes it over while this one sends; None when one already did."""
        now = self.clock()
        if now - message.claimed_at < self.settings.claim_timeout / 2:
            return message
        if not self.outbox.reclaim(message.id, self.worker_id, message.claimed_at, now):
            return None
        return replace(message, claimed_at=now)

    def _plan(self, message: ClaimedMessage) -> Plan:
        return self.catalog.get(message.plan_id).plan

    def _refusal(self, message: ClaimedMessage) -> str | None:
        """Why this patient must not get this message on this channel, if they must not."""
        if message.channel == "sms":
            if message.sms_opted_out_at is not None:
                return "patient opted out of SMS"
            if not message.sms_consent:
                return "no SMS consent"
            if message.phone is None or message.phone_invalid_at is not None:
                return "no valid phone number"
        elif message.channel == "email" and not message.email:
            return "no email address"
        return None

    def _within_caps(
        self, message: ClaimedMessage, plan: Plan, now: datetime, ledger: SmsLedger
    ) -> tuple[Attempt | None, bool]:
        """Defer an SMS that would exceed the plan's daily or weekly cap (never drop it)."""
        zone = ZoneInfo(message.timezone)
        local = now.astimezone(zone)
        day_start = resolve_local(local.date(), time(0, 0), zone)[0]
        history = ledger.history(message.patient_id, day_start, now - timedelta(days=7))
        caps = plan.sms_caps
        if history.today < caps.per_day and history.this_week < caps.per_week:
            return None, history.total == 0
        tomorrow = local.date() + timedelta(days=1)
        resume = resolve_local(tomorrow, plan.defaults.quiet_hours.end, zone)[0].astimezone(UTC)
        which = "daily" if history.today >= caps.per_day else "weekly"
        reason = (
            f"{which} SMS cap reached ({caps.per_day}/day, {caps.per_week}/week); "
            + waits_until(resume, message.timezone)
        )
        # The window is written only where it is widened: the row's own may have moved since
        # the claim (a reschedule retimes a held message), and writing the claimed one back
        # would let a pre-procedure instruction outlive a procedure moved earlier.
        widened = None
        if resume >= message.send_before:
            if message.phase is Phase.PRE_PROCEDURE:
                self.outbox.record_skipped(
                    message.id,
                    now,
                    f"{which} SMS cap reached until after the procedure starts",
                    worker=self.worker_id,
                )
                return Attempt.SKIPPED, False
            widened = resume + (message.send_before - message.due_at)
        self.outbox.record_deferred(
            message.id, now, resume, reason, send_before=widened, worker=self.worker_id
        )
        return Attempt.DEFERRED, False

    def _outgoing(self, message: ClaimedMessage, plan: Plan, first_sms: bool) -> OutgoingMessage:
        rendered = self._render(message, plan, first_sms)
        to = message.phone if message.channel == "sms" else message.email
        if not to:
            raise ValueError(f"no {message.channel} address")
        return OutgoingMessage(
            outbox_id=message.id,
            channel=message.channel,
            to=to,
            body=rendered.body,
            subject=rendered.subject,
            html=rendered.html,
            uid=message.uid,
        )

    def _render(self, message: ClaimedMessage, plan: Plan, first_sms: bool) -> RenderedMessage:
        patient = PatientFacts(
            message.first_name, message.procedure_date, message.procedure_time, message.attributes
        )
        return render_step(
            self.catalog.renderer,
            plan,
            message.step_id,
            message.channel,
            message.language,
            patient,
            self.settings.clinic,
            first_sms=first_sms,
            template=message.template,
        )

    def _send(self, message: ClaimedMessage, outgoing: OutgoingMessage) -> Attempt:
        channel = self.channels[message.channel]
        self.limiters[message.channel].acquire()
        try:
            receipt = channel.send(outgoing)
        except DeliveryError as exc:
            return self._record_failure(message, exc)
        except Exception:
            log.exception("message %s: %s channel failed; outcome unknown", message.id, channel)
            return Attempt.UNSETTLED
        self.health.resume(message.channel)
        self._record_sent(message, outgoing, receipt, None)
        if not channel.group_outcomes:
            self._flush()  # no look-up after a crash: commit this send before the next one
        return Attempt.SENT

    def _record_sent(
        self,
        message: ClaimedMessage,
        outgoing: OutgoingMessage,
        receipt: DeliveryReceipt,
        reason: str | None,
    ) -> None:
        self.outbox.record_sent(
            message.id,
            self.clock(),
            provider_message_id=receipt.provider_message_id,
            provider_status=receipt.provider_status,
            recipient=outgoing.to,
            subject=outgoing.subject,
            body=outgoing.body,
            reason=reason,
            worker=self.worker_id,
        )
        log.info(
            "sent message %s (%s, step %s) to %s",
            message.id,
            message.channel,
            message.step_id,
            mask_address(outgoing.to),
        )

    def _record_failure(self, message: ClaimedMessage, error: DeliveryError) -> Attempt:
        """Act on what the channel's classifier made of a failed send."""
        now = self.clock()
        if error.kind is FailureKind.UNKNOWN_OUTCOME:
            log.warning("message %s: %s; outcome unknown, to reconcile", message.id, error)
            return Attempt.UNSETTLED
        if error.kind is FailureKind.CHANNEL_CONFIGURATION:
            state = self.health.stop(message.channel, error, now)
            assert state.probe_at is not None
            reason = f"waiting: the {message.channel} channel is stopped ({error})"
            self.outbox.record_deferred(
                message.id, now, state.probe_at, reason, worker=self.worker_id
            )
            return Attempt.CHANNEL_STOPPED
        stop = stop_kind_of(error.kind)
        if stop is not None:
            meaning = error.extra.get("meaning", error.message)
            self.consent.stop(
                StopCause(stop, StopVia.SEND_ERROR, error.code or "refused", meaning),
                patient_ids=[message.patient_id],
                number=message.phone,
            )
        if error.retryable and message.attempts < self.settings.max_attempts:
            at = retry_at(now, message.attempts, self.settings.retry_base_seconds)
            if at < message.send_before:
                self.outbox.record_retry(
                    message.id, now, at, f"will retry: {error}", error.code, worker=self.worker_id
                )
                log.warning("message %s: transient failure (%s); retrying", message.id, error.code)
                return Attempt.RETRY
        reason = (
            str(error)
            if not error.retryable
            else f"gave up after {message.attempts} tries: {error}"
        )
        self.outbox.record_failed(message.id, now, reason, error.code, worker=self.worker_id)
        log.warning("message %s: failed (%s)", message.id, error.code)
        return Attempt.FAILED
