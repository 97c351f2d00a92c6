"""The default channel: prints each message and appends it to the outbox file, its record."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.errors import DeliveryError, FailureKind
from reminders.redact import mask_address
from reminders.settings import Settings

log = logging.getLogger(__name__)

CHANNEL_NAMES = ("sms", "email")


class ConsoleChannel(Channel):
    """Stands in for a provider: one readable block on a stream, one JSON line in the outbox."""

    group_outcomes = True  # find_sent looks back, so a crash costs a look-up, not a resend

    def __init__(
        self,
        channel_name: str,
        outbox_file: Path,
        stream: TextIO | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if channel_name not in CHANNEL_NAMES:
            raise ValueError(f"channel_name must be one of {CHANNEL_NAMES}, not {channel_name!r}")
        self.name = channel_name
        self.outbox_file = Path(outbox_file)
        self._stream = stream
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, channel_name: str) -> ConsoleChannel:
        """A console channel for one kind of message, writing to settings.outbox_file."""
        return cls(channel_name, settings.outbox_file)

    def describe(self) -> str:
        """One line for the startup banner."""
        return f"console (outbox {self.outbox_file})"

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Record the message in the outbox file, then print it."""
        receipt = DeliveryReceipt(provider_message_id=f"console-{message.outbox_id}")
        sent_at = self._clock()
        record = {
            "outbox_id": message.outbox_id,
            "channel": self.name,
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "html": message.html,
            "sent_at": sent_at.isoformat(),
            "provider_message_id": receipt.provider_message_id,
        }
        try:
            self._append_line(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise DeliveryError(
                f"cannot write {self.outbox_file}: {exc}", kind=FailureKind.RETRY
            ) from exc
        self._print(message, sent_at)
        log.info(
            "%s written to console outbox_id=%s to=%s",
            self.name,
            message.outbox_id,
            mask_address(message.to),
        )
        return receipt

    def find_sent(self, message: OutgoingMessage, since: datetime) -> DeliveryReceipt | None:
        """The receipt of `message` if the outbox file has its line, written at or after `since`.

        A naive `since` is taken as UTC.
        """
        since_utc = since if since.tzinfo else since.replace(tzinfo=UTC)
        try:
            with self.outbox_file.open(encoding="utf-8") as outbox:
                for line in outbox:
                    record = _parse_line(line)
                    if (
                        record is not None
                        and record.get("outbox_id") == message.outbox_id
                        and record.get("channel") == self.name
                        and _written_since(record, since_utc)
                    ):
                        return DeliveryReceipt(
                            provider_message_id=record.get("provider_message_id")
                            or f"console-{message.outbox_id}"
                        )
        except FileNotFoundError:
            return None
        return None

    def _append_line(self, line: str) -> None:
        """Append with one write call in append mode, so concurrent writers never interleave."""
        self.outbox_file.parent.mkdir(parents=True, exist_ok=True)
        data = line.encode("utf-8")
        with self.outbox_file.open("ab", buffering=0) as outbox:
            written = outbox.write(data)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")

    def _print(self, message: OutgoingMessage, sent_at: datetime) -> None:
        """Print a readable block; a console that cannot show it does not fail the delivery."""
        stream = self._stream or sys.stdout
        when = sent_at.astimezone()
        lines = [
            f"----- {self.name} #{message.outbox_id} at {when:%Y-%m-%d %H:%M:%S %Z}",
            f"To:      {mask_address(message.to)}",
        ]
        if message.subject is not None:
            lines.append(f"Subject: {message.subject}")
        lines += ["", message.body.rstrip("\n"), "-----", ""]
        try:
            stream.write("\n".join(lines))
            stream.flush()
        except (OSError, ValueError) as exc:  # closed stream, unencodable text
            log.warning("cannot print %s outbox_id=%s: %s", self.name, message.outbox_id, exc)


def _parse_line(line: str) -> dict[str, Any] | None:
    """One outbox record, or None for a blank or torn line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _written_since(record: dict[str, Any], since: datetime) -> bool:
    try:
        return datetime.fromisoformat(record["sent_at"]) >= since
    except (KeyError, TypeError, ValueError):
        return False
