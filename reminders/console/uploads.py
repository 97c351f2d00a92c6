"""CSV files between their dry run and their import, held in memory for the session that sent them.

The file is kept here (not sent back to the browser) so the import runs on exactly the bytes
the dry run checked. One file per session, for 30 minutes; a restart forgets it (upload again).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.clock import utc_now

KEEP_FOR = timedelta(minutes=30)
MAX_FILES = 100


@dataclass(frozen=True)
class Upload:
    """A file waiting for its import."""

    token: str
    session_id: int
    name: str
    data: bytes
    stored_at: datetime


class PendingUploads:
    """The files sessions checked and may now import."""

    def __init__(self, keep_for: timedelta = KEEP_FOR) -> None:
        self.keep_for = keep_for
        self._by_session: dict[int, Upload] = {}
        self._lock = threading.Lock()

    def put(self, session_id: int, name: str, data: bytes) -> str:
        """Hold a checked file for the session (replacing its earlier one); returns its token."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            if len(self._by_session) >= MAX_FILES and session_id not in self._by_session:
                oldest = min(self._by_session.values(), key=lambda u: u.stored_at)
                del self._by_session[oldest.session_id]
            self._by_session[session_id] = Upload(token, session_id, name, data, utc_now())
        return token

    def take(self, session_id: int, token: str) -> Upload | None:
        """The session's file with this token (once), or None when it is gone or not theirs."""
        with self._lock:
            self._expire()
            upload = self._by_session.get(session_id)
            if upload is None or not secrets.compare_digest(upload.token, token):
                return None
            del self._by_session[session_id]
            return upload

    def _expire(self) -> None:
        now = utc_now()
        for session_id, upload in list(self._by_session.items()):
            if now - upload.stored_at > self.keep_for:
                del self._by_session[session_id]
