"""Which channels can send right now: a configuration error stops a channel, not its messages.

When a provider refuses the service's own settings (a rejected login, an invalid sender, a
server without STARTTLS), every message on that channel would fail the same way. The channel is
marked stopped instead; its messages stay pending, and after a pause one message (or a startup
check) probes it again. The state is said once in the log and shown by `/health`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.errors import DeliveryError

log = logging.getLogger(__name__)

FIRST_PAUSE = timedelta(minutes=1)
LONGEST_PAUSE = timedelta(minutes=15)


@dataclass(frozen=True)
class ChannelState:
    """One channel's state: ok, or stopped since when, why, and until when."""

    name: str
    ok: bool
    reason: str | None = None
    code: str | None = None
    since: datetime | None = None
    probe_at: datetime | None = None


class ChannelHealth:
    """The state of each channel, shared by the dispatcher, the banner and `/health`."""

    def __init__(self, names: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._states = {name: ChannelState(name, ok=True) for name in names}
        self._pauses: dict[str, timedelta] = {}

    def stop(self, name: str, error: DeliveryError, now: datetime) -> ChannelState:
        """Stop a channel after a configuration error; the next probe waits, longer each time."""
        with self._lock:
            previous = self._states.get(name)
            pause = min(LONGEST_PAUSE, self._pauses.get(name, FIRST_PAUSE / 2) * 2)
            self._pauses[name] = pause
            since = previous.since if previous and not previous.ok else now
            state = ChannelState(name, False, str(error), error.code, since, now + pause)
            self._states[name] = state
        if previous is None or previous.ok:
            log.error("%s channel stopped: %s; messages wait until it is fixed", name, error)
        return state

    def resume(self, name: str) -> None:
        """A send or a check went through: the channel is usable again."""
        with self._lock:
            previous = self._states.get(name)
            self._states[name] = ChannelState(name, ok=True)
            self._pauses.pop(name, None)
        if previous is not None and not previous.ok:
            log.warning("%s channel resumed sending", name)

    def blocked_until(self, name: str, now: datetime) -> ChannelState | None:
        """The stopped state of a channel while its next probe is not due, else None."""
        with self._lock:
            state = self._states.get(name)
        if state is None or state.ok or state.probe_at is None or now >= state.probe_at:
            return None
        return state

    def states(self) -> list[ChannelState]:
        """Every channel's state, by name."""
        with self._lock:
            return [self._states[name] for name in sorted(self._states)]

    @property
    def all_ok(self) -> bool:
        """Whether every channel can send."""
        return all(state.ok for state in self.states())
