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

Beside it, each with one job: `caps` (SMS frequency caps), `compose` (whether a patient may
get a message on its channel, and the message rendered for them), `sending` (the send and the
recorded answer), `report` (what a pass did) and `settings` (the knobs).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel, OutgoingMessage
from reminders.clock import utc_now
from reminders.consent import SmsConsentService
from reminders.dispatch.caps import SmsLedger, sms_cap_hold, sms_history
from reminders.dispatch.compose import outgoing_message, refusal
from reminders.dispatch.health import ChannelHealth
from reminders.dispatch.report import Attempt, PassReport
from reminders.dispatch.retry import retry_at
from reminders.dispatch.sending import Sender
from reminders.dispatch.settings import DispatchSettings
from reminders.errors import DeliveryError, NotFoundError, PlanError
from reminders.plans.model import Plan
from reminders.schedule import SendAction, decide_send, waits_until
from reminders.store.inbound_schema import FlagKind
from reminders.store.message_records import ClaimedMessage
from reminders.store.reply_records import NewFlag
from reminders.store.schema import EnrollmentStatus
from reminders.store.storage import Storage

log = logging.getLogger(__name__)


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
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.health = health or ChannelHealth(list(channels))
        consent = SmsConsentService(
            storage,
            catalog,
            AuditTrail(storage.access, Actor.system("dispatcher"), clock),
            clock=clock,
        )
        self.sender = Sender(
            self.outbox, consent, channels, self.health, settings, clock, self.worker_id
        )

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
                self.sender.record_sent(
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
        refused = refusal(message)
        if refused:
            self.outbox.record_skipped(message.id, now, refused, worker=self.worker_id)
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
        outcome = self.sender.send(message, outgoing)
        if outcome is Attempt.SENT and not self.channels[message.channel].group_outcomes:
            self._flush()  # no look-up after a crash: commit this send before the next one
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

    def _within_caps(
        self, message: ClaimedMessage, plan: Plan, now: datetime, ledger: SmsLedger
    ) -> tuple[Attempt | None, bool]:
        """Defer an SMS that would exceed the plan's daily or weekly cap (never drop it); the
        outcome if held, and whether it is the patient's first SMS."""
        history = sms_history(ledger, message, now)
        hold = sms_cap_hold(message, plan, now, history)
        if hold is None:
            return None, history.total == 0
        if hold.skip:
            self.outbox.record_skipped(message.id, now, hold.reason, worker=self.worker_id)
            return Attempt.SKIPPED, False
        self.outbox.record_deferred(
            message.id,
            now,
            hold.resume,
            hold.reason,
            send_before=hold.send_before,
            worker=self.worker_id,
        )
        return Attempt.DEFERRED, False

    def _outgoing(self, message: ClaimedMessage, plan: Plan, first_sms: bool) -> OutgoingMessage:
        return outgoing_message(
            message, plan, self.catalog.renderer, self.settings.clinic, first_sms=first_sms
        )
