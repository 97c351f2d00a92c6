"""HL7 acknowledgements: AA, AE with the reason, AR for what could not be parsed.

python-hl7's `create_ack` builds MSH and MSA from the message it answers; we add MSA-3 and an
ERR segment. A message without a usable MSH has nothing for `create_ack` to start from, so
that AR is written by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hl7.containers import Message

APPLICATION = "REMINDERS"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
_ERROR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "207": "Application internal error",
}


def escape(text: str) -> str:
    """Text made safe for one HL7 field (default delimiters), on one line."""
    text = " ".join(text.split())
    for plain, escaped in _ESCAPES:
        text = text.replace(plain, escaped)
    return text[:500]


def _err(code: str, text: str) -> str:
    label = _ERROR_TEXT.get(code, _ERROR_TEXT["207"])
    return f"ERR||||E|{code}^{label}^HL70357|||{escape(text)}"


def acknowledge(message: Message, ack_code: str, text: str, error_code: str = "207") -> str:
    """The ACK for a parsed message (MSH-10 echoed in MSA-2); by hand when MSH is too short
    for the library's helper."""
    try:
        ack = message.create_ack(ack_code, message_id=_new_id(), application=APPLICATION)
    except IndexError:
        return reject_unparsed(str(message), text, error_code, ack_code)
    segments = str(ack).rstrip("\r").split("\r")
    segments = [s + f"|{escape(text)}" if s.startswith("MSA|") else s for s in segments]
    if ack_code != "AA":
        segments.append(_err(error_code, text))
    return "\r".join(segments) + "\r"


def reject_unparsed(raw: str, text: str, error_code: str = "207", ack_code: str = "AR") -> str:
    """An AR for a message python-hl7 could not parse (or an AE we failed on), built by hand.

    MSA-2 echoes the control id when the raw text still shows one in an MSH line.
    """
    control_id, event = _salvage(raw)
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    msh = f"MSH|^~\\&|{APPLICATION}||||{now}+0000||ACK^{event}^ACK|{_new_id()}|P|2.5.1"
    msa = f"MSA|{ack_code}|{escape(control_id)}|{escape(text)}"
    return "\r".join([msh, msa, _err(error_code, text)]) + "\r"


def _salvage(raw: str) -> tuple[str, str]:
    """MSH-10 and the trigger event from a raw message, if its first line is an MSH."""
    line = raw.lstrip().split("\r", 1)[0].split("\n", 1)[0]
    if not line.startswith("MSH") or len(line) < 4:
        return "", ""
    fields = line.split(line[3])
    control_id = fields[9] if len(fields) > 9 else ""
    message_type = fields[8] if len(fields) > 8 else ""
    components = message_type.split("^")
    event = components[1] if len(components) > 1 else ""
    return control_id, "".join(ch for ch in event if ch.isalnum())[:3]


def _new_id() -> str:
    return uuid.uuid4().hex[:20].upper()
