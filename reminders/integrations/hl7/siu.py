"""Read an SIU message (python-hl7's parse tree) into an `AppointmentEvent`.

Fields read: MSH-4 sending facility, MSH-7 message time, MSH-9 event, MSH-10 control id;
SCH-1/SCH-2 placer/filler appointment id, SCH-6 event reason, SCH-7 appointment reason,
SCH-8 appointment type, SCH-11.4 start (v2.3/2.4); TQ1-7 start; AIS-3 procedure, AIS-4 start;
AIL-3 location (else PV1-3); PID-3 identifiers, PID-5 name, PID-13/PID-14 phones and email,
PID-15 language.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import hl7
from hl7.containers import Message, Repetition, Segment

from reminders.integrations.events import (
    AppointmentAction,
    AppointmentEvent,
    PatientFacts,
    PatientIdentifier,
    Phone,
)
from reminders.integrations.mapping import Code

ACTIONS = {
    "S12": AppointmentAction.BOOKED,
    "S13": AppointmentAction.MOVED,
    "S14": AppointmentAction.MOVED,
    "S15": AppointmentAction.CANCELLED,
    "S17": AppointmentAction.CANCELLED,
    "S26": AppointmentAction.NO_SHOW,
}


class SiuError(Exception):
    """The message cannot be used as an SIU message at all (answered AR).

    `code` is the HL7 table 0357 error code for the ERR segment.
    """

    def __init__(self, message: str, code: str = "207") -> None:
        self.code = code
        super().__init__(message)


def get(segment: Segment, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value of a segment ('' when absent), unescaped.

    SiuError when the value holds a NUL character, which no database stores: a literal one is
    refused before parsing, this is the escaped kind (\\X00\\)."""
    try:
        value = str(segment.extract_field(1, field, rep, comp, sub)).strip()
    except IndexError:
        return ""
    if "\x00" in value:
        raise SiuError(f"{segment[0]}-{field}: a NUL character is not allowed", "102")
    return value


def repeats(segment: Segment, field: int) -> int:
    """How many repetitions a field has (0 when empty)."""
    if field >= len(segment):
        return 0
    value = segment(field)
    if value and isinstance(value[0], Repetition):
        return len(value)
    return 1 if str(value) else 0


def first(message: Message, segment_id: str) -> Segment | None:
    """The first segment with this id, or None."""
    try:
        return message.segment(segment_id)
    except KeyError:
        return None


def timestamp(value: str, where: str) -> datetime | None:
    """An HL7 DTM; naive when it carries no offset (local to the site)."""
    if not value:
        return None
    try:
        return hl7.parse_datetime(value)
    except ValueError:
        raise SiuError(f"{where}: not an HL7 date/time ({value!r})", "102") from None


def control_id(message: Message) -> str:
    """MSH-10 (may be blank in a broken message)."""
    return get(message.segment("MSH"), 10)


def read_siu(message: Message) -> AppointmentEvent:
    """The appointment event an SIU message describes."""
    msh = message.segment("MSH")
    message_type, event_code = get(msh, 9, 1, 1), get(msh, 9, 1, 2)
    if message_type != "SIU":
        raise SiuError(f"MSH-9: message type {message_type or '(none)'} is not SIU", "200")
    message_id = get(msh, 10)
    if not message_id:
        raise SiuError("MSH-10: no message control id", "101")
    if len(message_id) > 128:
        raise SiuError("MSH-10: longer than 128 characters", "102")
    sch = first(message, "SCH")
    if sch is None:
        raise SiuError("no SCH segment", "100")
    appointment_id = get(sch, 2) or get(sch, 1)
    if not appointment_id:
        raise SiuError("SCH-1/SCH-2: no placer or filler appointment id", "101")
    if len(appointment_id) > 256:
        raise SiuError("SCH-1/SCH-2: longer than 256 characters", "102")
    ais, ail, tq1, pv1 = (first(message, s) for s in ("AIS", "AIL", "TQ1", "PV1"))
    pid = first(message, "PID")
    start_text = (get(tq1, 7) if tq1 else "") or (get(ais, 4) if ais else "") or get(sch, 11, 1, 4)
    location = (get(ail, 3) if ail else "") or (get(pv1, 3) if pv1 else "")
    return AppointmentEvent(
        source="hl7",
        sender=(get(msh, 4) or get(msh, 3))[:128],
        message_id=message_id,
        sent_at=timestamp(get(msh, 7), "MSH-7"),
        appointment_id=appointment_id,
        action=ACTIONS.get(event_code, AppointmentAction.OTHER),
        codes=_codes(message, sch, ais),
        patient=_patient(pid) if pid is not None else None,
        start=timestamp(start_text, "start time (TQ1-7, AIS-4 or SCH-11)"),
        location=location or None,
        facility=get(msh, 4) or None,
        reason=get(sch, 6, 1, 2) or get(sch, 6, 1, 1) or None,
        event_code=(event_code or "(none)")[:32],
    )


def _codes(message: Message, sch: Segment, ais: Segment | None) -> list[Code]:
    """AIS-3 of every AIS segment, then SCH-7 and SCH-8, each with its coding system."""
    found: list[tuple[Segment, int]] = []
    with contextlib.suppress(KeyError):
        found.extend((segment, 3) for segment in message.segments("AIS"))
    found.extend([(sch, 7), (sch, 8)])
    codes = []
    for segment, field in found:
        code, system = get(segment, field, 1, 1), get(segment, field, 1, 3)
        if code:
            codes.append(Code(system=system or "(none)", code=code))
        alt_code, alt_system = get(segment, field, 1, 4), get(segment, field, 1, 6)
        if alt_code:
            codes.append(Code(system=alt_system or "(none)", code=alt_code))
    return codes


def _patient(pid: Segment) -> PatientFacts:
    identifiers = [
        PatientIdentifier(
            value=get(pid, 3, rep, 1),
            type=get(pid, 3, rep, 5) or None,
            assigning_authority=get(pid, 3, rep, 4) or None,
        )
        for rep in range(1, repeats(pid, 3) + 1)
        if get(pid, 3, rep, 1)
    ]
    phones: list[Phone] = []
    email = None
    for field in (13, 14):
        for rep in range(1, repeats(pid, field) + 1):
            use, equipment = get(pid, field, rep, 2), get(pid, field, rep, 3)
            if use == "NET" or equipment in ("Internet", "X.400"):
                email = email or get(pid, field, rep, 4) or None
                continue
            number = _number(pid, field, rep)
            if number:
                phones.append(Phone(number, mobile=field == 13 and equipment == "CP"))
    return PatientFacts(
        identifiers=identifiers,
        first_name=get(pid, 5, 1, 2) or None,
        phones=phones,
        email=email,
        language=get(pid, 15, 1, 1) or None,
    )


def _number(pid: Segment, field: int, rep: int) -> str:
    """XTN-12 unformatted, else country + area + local (XTN-5..7), else XTN-1 as written."""
    unformatted = get(pid, field, rep, 12)
    if unformatted:
        return unformatted
    area, local = get(pid, field, rep, 6), get(pid, field, rep, 7)
    if local:
        country = get(pid, field, rep, 5)
        return ("+" + country if country else "") + area + local
    return get(pid, field, rep, 1)
