"""One raw HL7 message in, one ACK out: parse, apply through the appointment service, log."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import hl7
from hl7.client import read_loose
from hl7.exceptions import HL7Exception

from reminders.integrations.hl7.ack import acknowledge, reject_unparsed
from reminders.integrations.hl7.siu import SiuError, control_id, get, read_siu
from reminders.integrations.service import AppointmentService, FeedOutcome
from reminders.store.feed_schema import FAILED_OUTCOMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hl7Reply:
    """What became of one message and the ACK that answers it."""

    control_id: str
    outcome: FeedOutcome | Literal["error"]  # error: not processed here; the sender retries
    detail: str
    ack_code: str
    ack: str

    @property
    def refused(self) -> bool:
        """Whether the message was refused or could not be read (a file import fails)."""
        return self.outcome in FAILED_OUTCOMES


def normalize(raw: str) -> str:
    """Segments separated by CR, whatever line endings the sender or a file used."""
    return raw.replace("\r\n", "\r").replace("\n", "\r").strip("\r\n\x0b\x1c ")


def decode(block: bytes) -> str:
    """Bytes of one message as text: UTF-8 (v2.8's preference), else Latin-1."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")


def _readable(read: Callable[[], str]) -> str:
    """A field of a message refused as SIU, for its log line ('' when it cannot be kept)."""
    try:
        return read()
    except SiuError:
        return ""


class Hl7Handler:
    """Turns raw SIU messages into appointment events and answers each with an ACK."""

    def __init__(self, service: AppointmentService) -> None:
        self.service = service

    def handle(self, raw: str) -> Hl7Reply:
        """Process one message and build its ACK (AE when we fail: the sender retries)."""
        raw = normalize(raw)
        try:
            return self._handle(raw)
        except Exception as exc:  # the database may be away; never log the message itself
            log.error("HL7 message not processed: %s", type(exc).__name__)
            reason = "not processed because of an internal error; send it again later"
            return Hl7Reply("", "error", reason, "AE", reject_unparsed(raw, reason, "207", "AE"))

    def _handle(self, raw: str) -> Hl7Reply:
        if "\x00" in raw:
            reason = "a NUL character is not allowed in an HL7 message"
            return Hl7Reply("", FeedOutcome.REJECTED, reason, "AR", reject_unparsed(raw, reason))
        try:
            message = hl7.parse(raw)
            message.segment("MSH")
        except (HL7Exception, KeyError, IndexError, ValueError) as exc:
            reason = f"not an HL7 v2 message: {exc}" if str(exc) else "not an HL7 v2 message"
            self.service.reject("hl7", "", f"unparsed:{uuid.uuid4().hex}", reason, raw)
            return Hl7Reply("", FeedOutcome.REJECTED, reason, "AR", reject_unparsed(raw, reason))
        try:
            event = read_siu(message)
        except SiuError as exc:
            sender = _readable(lambda: get(message.segment("MSH"), 4))[:128]
            message_id = _readable(lambda: control_id(message))
            log_id = message_id if 0 < len(message_id) <= 128 else f"unparsed:{uuid.uuid4().hex}"
            self.service.reject("hl7", sender, log_id, str(exc), raw)
            ack = acknowledge(message, "AR", str(exc), exc.code)
            return Hl7Reply(message_id, FeedOutcome.REJECTED, str(exc), "AR", ack)
        result = self.service.handle(event, raw)
        ack = acknowledge(message, result.ack_code, result.detail)
        return Hl7Reply(event.message_id, result.outcome, result.detail, result.ack_code, ack)

    def handle_file(self, data: bytes) -> list[Hl7Reply]:
        """Every message of a file an interface engine dropped (plain, or MLLP-framed)."""
        return [self.handle(decode(raw)) for raw in read_loose(io.BytesIO(data))]
