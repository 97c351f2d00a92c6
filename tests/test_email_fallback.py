"""Where the plan allows it (`email_if_undelivered`), a step whose text the carrier reports
undelivered goes again by email: once, only to a patient with an address. End to end: the
real Twilio client against the stand-in, Twilio's signed delivery report to the webhook, and
the email delivered to a real SMTP server (aiosmtpd); SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_fixtures import PLAN_YAML, WELCOME_AT, World, running_world, utc
from smtp_fixtures import SmtpTestServer

from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.channels.twilio_sms import TwilioSmsChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn

ANA = "+12025550143"
FALLS_BACK = PLAN_YAML.replace(
    "    template: welcome\n", "    template: welcome\n    email_if_undelivered: true\n"
)


@dataclass
class Clinic:
    world: World
    twilio: TwilioStandIn
    smtp: SmtpTestServer

    def send_due(self) -> PassReport:
        sms = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006", base_url=self.twilio.url
        )
        email = SmtpEmailChannel(
            self.smtp.host, self.smtp.port, from_address="clinic@example.org", starttls=False
        )
        app = self.world.app
        channels = {"sms": sms, "email": email}
        try:
            return Dispatcher(
                app.storage, app.catalog, channels, app.dispatch_settings()
            ).run_once()
        finally:
            email.close()

    def report_welcome(self, status: str, code: str) -> None:
        [text] = self.twilio.messages
        assert self.world.status(str(text["sid"]), status, code).status_code == 204

    def rows(self, step_id: str) -> list[tuple[str, str, str | None]]:
        return [
            (m["channel"], m["status"], m["status_reason"])
            for m in self.world.timeline("ana")["messages"]
            if m["step_id"] == step_id
        ]


@pytest.fixture
def clinic(tmp_path: Path, database_url: str) -> Iterator[Clinic]:
    with (
        running_world(tmp_path, database_url) as world,
        TwilioStandIn() as twilio,
        SmtpTestServer() as smtp,
    ):
        (tmp_path / "plans" / "knee.yaml").write_text(FALLS_BACK, encoding="utf-8")
        world.app.catalog.reload()
        yield Clinic(world, twilio, smtp)


def test_an_undelivered_text_goes_again_by_email_once(clinic: Clinic) -> None:
    assert clinic.world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    clinic.world.at(WELCOME_AT)
    assert clinic.send_due().outcomes == {"sent": 1}

    clinic.report_welcome("undelivered", "30003")
    clinic.report_welcome("failed", "30003")  # a later report of the same text adds nothing

    reason = "the phone was unreachable (switched off or out of coverage) (30003)"
    assert clinic.rows("welcome") == [
        ("sms", "undelivered", f"not delivered: {reason}"),
        ("email", "pending", f"sent by email: the text did not reach the patient ({reason})"),
    ]
    assert clinic.send_due().outcomes == {"sent": 1}
    [received] = clinic.smtp.received
    assert received.rcpt_tos == ["ana@example.org"]
    assert received.parsed()["Subject"] == "Welcome"
    assert [row[:2] for row in clinic.rows("welcome")] == [
        ("sms", "undelivered"),
        ("email", "sent"),
    ]
    assert clinic.send_due().handled == 0
    assert len(clinic.smtp.received) == 1
    assert len(clinic.twilio.messages) == 1  # the text was never sent again


def test_no_email_address_no_fall_back(clinic: Clinic) -> None:
    assert clinic.world.enroll("ana", ANA).status_code == 201
    clinic.world.at(WELCOME_AT)
    clinic.send_due()

    clinic.report_welcome("undelivered", "30003")

    assert clinic.send_due().handled == 0
    assert [row[:2] for row in clinic.rows("welcome")] == [("sms", "undelivered")]
    assert clinic.smtp.received == []


def test_a_step_the_plan_does_not_let_fall_back_stays_undelivered(clinic: Clinic) -> None:
    (clinic.world.app.settings.plans_dir / "knee.yaml").write_text(PLAN_YAML, encoding="utf-8")
    clinic.world.app.catalog.reload()
    assert clinic.world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    clinic.world.at(WELCOME_AT)
    clinic.send_due()

    clinic.report_welcome("undelivered", "30003")

    assert clinic.send_due().handled == 0
    assert [row[:2] for row in clinic.rows("welcome")] == [("sms", "undelivered")]
    assert clinic.smtp.received == []


def test_reports_handled_at_once_queue_the_email_once(clinic: Clinic) -> None:
    assert clinic.world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    clinic.world.at(WELCOME_AT)
    clinic.send_due()
    storage = clinic.world.app.storage
    [text] = clinic.twilio.messages
    now = utc(WELCOME_AT)
    update = storage.outbox.update_delivery_status(
        str(text["sid"]), "undelivered", "30003", now, undelivered_reason="not delivered"
    )
    assert update is not None and update.undelivered
    steps = {("knee", "welcome")}
    start = threading.Barrier(8)

    def fall_back() -> int | None:
        start.wait()
        return storage.fallbacks.add_email_fallback(
            update.message_id, steps=steps, now=now, reason="sent by email"
        )

    with ThreadPoolExecutor(8) as pool:
        queued = [q for q in pool.map(lambda _: fall_back(), range(8)) if q is not None]

    assert len(queued) == 1
    assert [row[:2] for row in clinic.rows("welcome")] == [
        ("sms", "undelivered"),
        ("email", "pending"),
    ]
