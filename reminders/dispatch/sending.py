"""Handing one claimed message to its channel and recording what the provider answered.

Accepted: recorded as sent. Refused for now: retried with back-off while its window lasts.
Refused for good: failed, and SMS stopped where the refusal says the number must not or
cannot be texted. Wrong channel settings: the channel stops and the message waits for it.
Outcome unknown: left in "sending" for reconciliation, never resent blindly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.consent import SmsConsentService, StopCause, StopVia, stop_kind_of
from reminders.dispatch.health import ChannelHealth
from reminders.dispatch.ratelimit import RateLimiter
from reminders.dispatch.report import Attempt
from reminders.dispatch.retry import retry_at
from reminders.dispatch.settings import DispatchSettings
from reminders.errors import DeliveryError, FailureKind
from reminders.redact import mask_address
from reminders.store.message_records import ClaimedMessage
from reminders.store.outbox import Outbox

log = logging.getLogger(__name__)


class Sender:
    """One worker's sends: each channel at its rate, each answer recorded in the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        consent: SmsConsentService,
        channels: dict[str, Channel],
        health: ChannelHealth,
        settings: DispatchSettings,
        clock: Callable[[], datetime],
        worker_id: str,
    ) -> None:
        self.outbox = outbox
        self.consent = consent
        self.channels = channels
        self.health = health
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self.limiters = {name: RateLimiter(settings.per_second.get(name)) for name in channels}

    def send(self, message: ClaimedMessage, outgoing: OutgoingMessage) -> Attempt:
        """Send one message within its channel's rate and record the answer; a send whose
        outcome is not known is left in "sending" for reconciliation."""
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
        self.record_sent(message, outgoing, receipt, None)
        return Attempt.SENT

    def record_sent(
        self,
        message: ClaimedMessage,
        outgoing: OutgoingMessage,
        receipt: DeliveryReceipt,
        reason: str | None,
    ) -> None:
        """Record a message the provider accepted (`reason`: how we know, if not by sending)."""
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
