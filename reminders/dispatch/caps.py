"""SMS frequency caps: the texts a patient was already sent, and when one more must wait.

Pure: the dispatcher reads a claimed batch's SMS history once (`SmsLedger`), asks
`sms_cap_hold` about each text and records what it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.plans.model import Phase, Plan
from reminders.schedule import resolve_local, waits_until
from reminders.store.message_records import ClaimedMessage


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


def sms_history(ledger: SmsLedger, message: ClaimedMessage, now: datetime) -> SmsHistory:
    """The patient's texts ever, since midnight in their zone, and in the last seven days."""
    zone = ZoneInfo(message.timezone)
    day_start = resolve_local(now.astimezone(zone).date(), time(0, 0), zone)[0]
    return ledger.history(message.patient_id, day_start, now - timedelta(days=7))


@dataclass(frozen=True)
class CapHold:
    """An SMS the plan's caps hold back: deferred to `resume`, with its window widened to
    `send_before` where it had to be (None: the row's own window stands), or skipped (`skip`)."""

    reason: str
    resume: datetime
    send_before: datetime | None = None
    skip: bool = False


def sms_cap_hold(
    message: ClaimedMessage, plan: Plan, now: datetime, history: SmsHistory
) -> CapHold | None:
    """None when one more SMS stays within the plan's daily and weekly caps; else it waits for
    the end of the next day's quiet hours (never dropped), but a pre-procedure instruction the
    wait would carry past its window is skipped."""
    caps = plan.sms_caps
    if history.today < caps.per_day and history.this_week < caps.per_week:
        return None
    zone = ZoneInfo(message.timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    resume = resolve_local(tomorrow, plan.defaults.quiet_hours.end, zone)[0].astimezone(UTC)
    which = "daily" if history.today >= caps.per_day else "weekly"
    reason = f"{which} SMS cap reached ({caps.per_day}/day, {caps.per_week}/week); " + waits_until(
        resume, message.timezone
    )
    # The window is written only where it is widened: the row's own may have moved since
    # the claim (a reschedule retimes a held message), and writing the claimed one back
    # would let a pre-procedure instruction outlive a procedure moved earlier.
    widened = None
    if resume >= message.send_before:
        if message.phase is Phase.PRE_PROCEDURE:
            skipped = f"{which} SMS cap reached until after the procedure starts"
            return CapHold(skipped, resume, skip=True)
        widened = resume + (message.send_before - message.due_at)
    return CapHold(reason, resume, send_before=widened)
