"""The scheduling feed under test: a small plan, a mapping file, SIU messages, and two ways in.

Messages are built as an EHR's interface engine sends them (segments joined by CR), and sent
either over a real TCP MLLP connection with python-hl7's own client, or as a file dropped by
the interface engine (`reminders hl7 import`'s path).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hl7
from hl7.client import MLLPClient
from hl7.containers import Message
from plan_fixtures import write_demo_plan

from reminders.access.actor import Actor
from reminders.app import App
from reminders.enrollment import EnrollmentService
from reminders.errors import NotFoundError
from reminders.integrations.hl7.handler import Hl7Handler
from reminders.integrations.hl7.listener import MllpListener
from reminders.integrations.service import AppointmentService
from reminders.integrations.wiring import appointment_service
from reminders.settings import Settings
from reminders.store.feeds import FeedRepository
from reminders.store.message_records import MessageView
from reminders.store.reply_records import FlagView

MAPPING = """\
patient_identifier: {type: MR}
sites:
  - id: riverside
    timezone: America/Chicago
    facilities: [RIVERSIDE]
  - id: lakeside
    timezone: America/Denver
    facilities: [LAKESIDE]
    locations: [LAKE-OR1]
consent: {sms: granted}
defaults:
  attributes: {takes_blood_thinners: false}
languages: {SPA: es, ENG: en}
refusals: AE
rules:
  - plan: demo
    codes:
      - {system: C4, code: "0275T"}
      - {system: "http://www.ama-assn.org/go/cpt", code: "0275T"}
"""

MOBILE = "^PRN^CP^^1^312^5550123"


def segment(name: str, fields: dict[int, str]) -> str:
    """One segment from its numbered fields (MSH counts from MSH-2, the encoding characters)."""
    last = max(fields)
    first = 2 if name == "MSH" else 1
    return "|".join([name, *(fields.get(i, "") for i in range(first, last + 1))])


def siu(
    event: str = "S12",
    control_id: str = "MSG0001",
    sent: str = "20270301090000",
    appointment: str = "APT1",
    start: str = "20270310143000+0000",
    mrn: str = "MRN1",
    first_name: str = "Ana",
    phone: str = MOBILE,
    code: str = "0275T^MILD procedure^C4",
    facility: str = "RIVERSIDE",
    location: str = "",
    reason: str = "",
    language: str = "ENG^English^ISO6392",
) -> str:
    """An SIU message of the given trigger event."""
    segments = [
        segment(
            "MSH",
            {
                2: "^~\\&",
                3: "EPIC",
                4: facility,
                5: "REMINDERS",
                6: "CLINIC",
                7: sent,
                9: f"SIU^{event}^SIU_S12",
                10: control_id,
                11: "P",
                12: "2.5.1",
            },
        ),
        segment(
            "SCH",
            {1: f"{appointment}^EPIC", 2: f"{appointment}^EPIC", 6: reason, 25: "Booked"},
        ),
        segment(
            "PID",
            {
                1: "1",
                3: f"{mrn}^^^RIVERSIDE^MR~999-00-1234^^^SSA^SS",
                5: f"Lopez^{first_name}",
                13: phone,
                15: language,
            },
        ),
        segment("RGS", {1: "1"}),
        segment("AIS", {1: "1", 3: code, 4: start}),
    ]
    if location:
        segments.append(segment("AIL", {1: "1", 3: location}))
    return "\r".join(segments) + "\r"


@dataclass
class Clock:
    """A clock the test moves (the feed's services take it instead of reading the time)."""

    now: datetime = field(default_factory=lambda: datetime(2027, 3, 1, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Feed:
    """An app with the demo plan and the mapping, and the HL7 handler over it."""

    app: App
    service: AppointmentService
    handler: Hl7Handler
    clock: Clock
    root: Path

    @property
    def log(self) -> FeedRepository:
        return self.service.feeds

    def timeline(self, external_id: str) -> list[MessageView]:
        """The patient's messages; none for a patient never enrolled."""
        try:
            return self.app.storage.message_views.timeline(external_id)
        except NotFoundError:
            return []

    def app_flags(self, external_id: str) -> list[FlagView]:
        return self.app.storage.outcomes.list_flags(external_id=external_id)

    def enrollment(self, external_id: str) -> dict[str, object]:
        enrollment_id, _ = self.app.storage.patients.enrollment_id(external_id, "demo")
        details = self.app.storage.patients.enrollment_details(enrollment_id)
        return {
            **asdict(details.patient),
            **asdict(details.enrollment),
            "patient_id": details.patient.id,
        }


def build_feed(
    root: Path, database_url: str, mapping: str = MAPPING, extra_steps: str = ""
) -> Feed:
    plans, templates = write_demo_plan(root, extra_steps=extra_steps)
    mapping_file = root / "integrations" / "scheduling.yaml"
    mapping_file.parent.mkdir(parents=True, exist_ok=True)
    mapping_file.write_text(mapping)
    settings = Settings(
        database_url=database_url,
        plans_dir=plans,
        templates_dir=templates,
        scheduling_mapping=mapping_file,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = App.from_settings(settings)
    clock = Clock()
    service = appointment_service(app)
    service.clock = clock

    def enrollment_for(actor: str) -> EnrollmentService:
        """The app's enrollment service for the sender (audited as it), on the test's clock."""
        enrollment = app.enrollment(Actor.feed(actor))
        enrollment.clock = clock
        if enrollment.audit is not None:
            enrollment.audit.clock = clock
        return enrollment

    service.enrollment_for = enrollment_for
    return Feed(app, service, Hl7Handler(service), clock, root)


@contextmanager
def open_feed(
    root: Path, database_url: str, mapping: str = MAPPING, extra_steps: str = ""
) -> Iterator[Feed]:
    """A feed (the demo plan with `extra_steps`), closed afterwards."""
    built = build_feed(root, database_url, mapping, extra_steps)
    try:
        yield built
    finally:
        built.app.close()


def parse_ack(data: bytes) -> Message:
    """An ACK as received (MLLP framing stripped) parsed with python-hl7."""
    return hl7.parse(data.strip(b"\x0b\x1c\r").decode("utf-8"))


class MllpSender:
    """Sends over one TCP connection with python-hl7's MLLPClient to a running listener."""

    def __init__(self, feed: Feed) -> None:
        self.listener = MllpListener(feed.handler, "127.0.0.1", 0)
        self.listener.start()
        self.client = MLLPClient("127.0.0.1", self.listener.port)

    def __call__(self, message: str) -> Message:
        return parse_ack(self.client.send_message(message))

    def close(self) -> None:
        self.client.close()
        self.listener.stop()


class FileSender:
    """Drops each message in a file and imports it, as `reminders hl7 import` does."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.count = 0

    def __call__(self, message: str) -> Message:
        self.count += 1
        path = self.feed.root / f"drop-{self.count}.hl7"
        path.write_bytes(message.replace("\r", "\n").encode("utf-8"))
        (reply,) = self.feed.handler.handle_file(path.read_bytes())
        return hl7.parse(reply.ack)

    def close(self) -> None:
        pass


@contextmanager
def open_sender(kind: str, feed: Feed) -> Iterator[MllpSender | FileSender]:
    """Send one message, get its ACK back: over MLLP ("mllp"), or as a dropped file."""
    sender = MllpSender(feed) if kind == "mllp" else FileSender(feed)
    try:
        yield sender
    finally:
        sender.close()


def ack_code(ack: Message) -> str:
    return str(ack.segment("MSA")(1))


def ack_text(ack: Message) -> str:
    return ack.unescape(str(ack.segment("MSA")(3)))
