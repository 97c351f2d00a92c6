"""One "stop texting this patient" operation: an error while sending, a delivery report that
arrives later and an inbound STOP end in the same state (the patient's opt-out or unusable
number with its date, an event naming the source, pending SMS skipped with a reason saying what
happened or moved to email where the step allows, an audit entry naming the actor). Twilio is
the stand-in, reached with the real client; the database is SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_fixtures import WELCOME_AT, World, running_world, utc

from reminders.channels.twilio_sms import TwilioSmsChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn

ANA = "+12025550143"
DAY = WELCOME_AT[:10]


@dataclass
class Twilio:
    """The test service, sending SMS through the Twilio stand-in."""

    world: World
    standin: TwilioStandIn

    def send_due(self) -> None:
        sms = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006", base_url=self.standin.url
        )
        channels = {"sms": sms, "email": self.world.email}
        app = self.world.app
        Dispatcher(app.storage, app.catalog, channels, app.dispatch_settings()).run_once()

    def welcome_sid(self) -> str:
        [created] = self.standin.messages
        return str(created["sid"])


@pytest.fixture
def twilio(tmp_path: Path, database_url: str) -> Iterator[Twilio]:
    with running_world(tmp_path, database_url) as world, TwilioStandIn() as standin:
        assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
        world.at(WELCOME_AT)
        yield Twilio(world, standin)


def refused_when_sent(code: int) -> Callable[[Twilio], None]:
    def path(twilio: Twilio) -> None:
        twilio.standin.fail_recipient(ANA, code=code)
        twilio.send_due()

    return path


def reported_later(code: int) -> Callable[[Twilio], None]:
    def path(twilio: Twilio) -> None:
        twilio.send_due()
        response = twilio.world.status(twilio.welcome_sid(), "undelivered", str(code))
        assert response.status_code == 204

    return path


def texted(word: str) -> Callable[[Twilio], None]:
    def path(twilio: Twilio) -> None:
        twilio.send_due()
        assert twilio.world.text(ANA, word).status_code == 200

    return path


@dataclass(frozen=True)
class Expected:
    column: str  # the patient's state that records it
    event: tuple[str, str]  # the opt-out event's kind and source
    reason: str  # why pending SMS were skipped
    actor: str
    action: str


OPT_OUT = [
    pytest.param(
        refused_when_sent(21610),
        Expected(
            "sms_opted_out_at",
            ("opt_out", "send error 21610"),
            f"opted out of SMS at the carrier on {DAY} (send error 21610)",
            "system:dispatcher",
            "sms.opt_out",
        ),
        id="send-error-21610",
    ),
    pytest.param(
        reported_later(21610),
        Expected(
            "sms_opted_out_at",
            ("opt_out", "delivery report 21610"),
            f"opted out of SMS at the carrier on {DAY} (delivery report 21610)",
            "system:delivery-report",
            "sms.opt_out",
        ),
        id="delivery-report-21610",
    ),
    pytest.param(
        texted("STOP"),
        Expected(
            "sms_opted_out_at",
            ("opt_out", "STOP"),
            f"opted out of SMS by text on {DAY} (STOP)",
            "system:inbound-sms",
            "sms.opt_out",
        ),
        id="inbound-STOP",
    ),
]

UNUSABLE = "unknown number, or no longer in service (30005)"
NUMBER_UNUSABLE = [
    pytest.param(
        refused_when_sent(30005),
        Expected(
            "phone_invalid_at",
            ("phone_invalid", "send error 30005"),
            f"no valid phone number since {DAY}: {UNUSABLE}, per send error",
            "system:dispatcher",
            "sms.number_unusable",
        ),
        id="send-error-30005",
    ),
    pytest.param(
        reported_later(30005),
        Expected(
            "phone_invalid_at",
            ("phone_invalid", "delivery report 30005"),
            f"no valid phone number since {DAY}: {UNUSABLE}, per delivery report",
            "system:delivery-report",
            "sms.number_unusable",
        ),
        id="delivery-report-30005",
    ),
    pytest.param(
        reported_later(30006),
        Expected(
            "phone_invalid_at",
            ("phone_invalid", "delivery report 30006"),
            f"no valid phone number since {DAY}: a landline, or a carrier that cannot take "
            "texts (30006), per delivery report",
            "system:delivery-report",
            "sms.number_unusable",
        ),
        id="delivery-report-30006",
    ),
]


@pytest.mark.parametrize(("path", "expected"), OPT_OUT + NUMBER_UNUSABLE)
def test_every_path_that_learns_to_stop_texting_ends_in_the_same_state(
    twilio: Twilio, path: Callable[[Twilio], None], expected: Expected
) -> None:
    path(twilio)

    storage = twilio.world.app.storage
    state = storage.patients.enrollment_details(1).patient
    assert getattr(state, expected.column) == utc(WELCOME_AT)
    other = {"sms_opted_out_at", "phone_invalid_at"} - {expected.column}
    assert getattr(state, other.pop()) is None
    events = storage.inbound.opt_out_events(state.id)
    assert [(e.kind, e.keyword, e.at) for e in events] == [(*expected.event, utc(WELCOME_AT))]
    steps = {
        m["step_id"]: (m["channel"], m["status"], m["status_reason"])
        for m in twilio.world.timeline("ana")["messages"]
    }
    assert steps["relief-check-week-4"] == ("sms", "skipped", expected.reason)
    assert steps["relief-check-week-6"] == ("sms", "skipped", expected.reason)
    assert steps["follow-up"] == ("email", "pending", f"sent by email: {expected.reason}")
    [audit] = storage.access.audit_entries(actor=expected.actor)
    assert (audit.action, audit.external_id) == (expected.action, "ana")
    assert audit.detail == f"{expected.reason}; pending SMS: 2 skipped, 1 moved to email"


@pytest.mark.parametrize("code", [30003, 30007])
def test_unreachable_and_filtered_reports_never_stop_texting(twilio: Twilio, code: int) -> None:
    reported_later(code)(twilio)

    state = twilio.world.app.storage.patients.enrollment_details(1).patient
    assert (state.sms_opted_out_at, state.phone_invalid_at) == (None, None)
    steps = {m["step_id"]: m["status"] for m in twilio.world.timeline("ana")["messages"]}
    assert steps == {
        "welcome": "undelivered",
        "relief-check-week-4": "pending",
        "relief-check-week-6": "pending",
        "follow-up": "pending",
    }


@pytest.mark.parametrize("path", [refused_when_sent(21610), reported_later(21610)])
def test_stopping_a_number_stops_every_patient_who_shares_it(
    twilio: Twilio, path: Callable[[Twilio], None]
) -> None:
    """A parent and a child on one phone: an opt-out belongs to the number."""
    later = {"procedure_date": "2026-06-01"}  # nothing of his is due yet
    assert twilio.world.enroll("ben", ANA, **later).status_code == 201

    path(twilio)

    storage = twilio.world.app.storage
    ben = storage.patients.enrollment_details(2).patient
    assert ben.external_id == "ben" and ben.sms_opted_out_at == utc(WELCOME_AT)
    assert {m["status"] for m in twilio.world.timeline("ben")["messages"]} == {"skipped"}
