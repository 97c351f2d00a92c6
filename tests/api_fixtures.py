"""A running HTTP API over a real SQLite file, a small plan and a real dispatcher, for tests.

`World` drives it as staff and Twilio would: enroll over HTTP with an API key, let the
dispatcher send what is due (to the shipped InMemoryChannel), and post
inbound SMS and status callbacks signed with Twilio's own RequestValidator. Time is frozen
(freezegun) and moved by the test. The `world` fixture in conftest.py starts one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory
from httpx import Response
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from reminders.api.app import create_app
from reminders.api.keys import create_key
from reminders.app import App
from reminders.channels import registry
from reminders.channels.base import Channel
from reminders.cli.main import app as cli
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.settings import Settings
from reminders.testing.memory_channel import InMemoryChannel

AUTH_TOKEN = "test-twilio-auth-token"
PUBLIC_URL = "https://reminders.clinic.example"
CLINIC_NUMBER = "+15005550006"
CLINIC_NAME = "Riverside Spine"
CLINIC_PHONE = "(555) 010-0100"
ANA = "+12025550143"  # patients' phones
BEN = "+13125550188"

# Procedure on Monday 2 March 2026, patients in UTC: every step's instant is easy to read.
PROCEDURE_DATE = "2026-03-02"
ENROLLED_AT = "2026-02-20T12:00:00Z"
WELCOME_AT = "2026-02-28T09:00:00Z"
RELIEF_4_AT = "2026-03-30T10:00:00Z"
RELIEF_6_AT = "2026-04-13T10:00:00Z"
FOLLOW_UP_AT = "2026-04-27T09:00:00Z"

PLAN_YAML = """\
id: knee
name: Test recovery plan
version: 1
procedure: MILD
languages: [en]
defaults:
  send_time: "09:00"
  max_late: 12h
sms_caps: {per_day: 3, per_week: 10}
attributes:
  takes_blood_thinners:
    type: yes/no
    description: The care team recorded that the patient takes a blood thinner.
steps:
  - id: welcome
    phase: pre-procedure
    offset: {days: -2}
    template: welcome
  - id: relief-check-week-4
    phase: recovery
    offset: {weeks: 4, at: "10:00"}
    template: relief-check
    channel: sms
    max_late: 2d
  - id: relief-check-week-6
    phase: recovery
    offset: {weeks: 6, at: "10:00"}
    template: relief-check
    channel: sms
    max_late: 2d
  - id: follow-up
    phase: follow-up
    offset: {weeks: 8}
    template: follow-up
"""

TEMPLATES = {
    "welcome.sms.j2": "{{ clinic.name }}: Hi {{ patient.first_name }}, welcome."
    "{% if first_sms %} Reply STOP to opt out.{% endif %}",
    "welcome.email.j2": "{% block subject %}Welcome{% endblock %}"
    "{% block text %}Hi {{ patient.first_name }}, welcome.{% endblock %}",
    "relief-check.sms.j2": "{{ clinic.name }}: Hi {{ patient.first_name }}, reply with your "
    "leg pain from 0 to 10 and Y or N: can you walk farther than before?"
    "{% if first_sms %} Reply STOP to opt out.{% endif %}",
    "follow-up.sms.j2": "{{ clinic.name }}: time for your check-up."
    "{% if first_sms %} Reply STOP to opt out.{% endif %}",
    "follow-up.email.j2": "{% block subject %}Check-up{% endblock %}"
    "{% block text %}Time for your check-up.{% endblock %}",
}


def write_plan(root: Path) -> tuple[Path, Path]:
    """The test plan and its templates under `root`; returns (plans dir, templates dir)."""
    plans, templates = root / "plans", root / "templates"
    plans.mkdir()
    (plans / "knee.yaml").write_text(PLAN_YAML, encoding="utf-8")
    folder = templates / "knee" / "en"
    folder.mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return plans, templates


def make_settings(root: Path, **overrides: Any) -> Settings:
    """Settings for a test service under `root` (no .env, no environment surprises)."""
    plans, templates = write_plan(root)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'reminders.sqlite3'}",
        "plans_dir": plans,
        "templates_dir": templates,
        "clinic_name": CLINIC_NAME,
        "clinic_phone": CLINIC_PHONE,
        "twilio_auth_token": AUTH_TOKEN,
        "public_base_url": PUBLIC_URL,
        "sms_per_second": 0,
        "email_per_second": 0,
        "password_hash_memory_kib": 1024,  # Argon2id, cheap for tests
        **overrides,
    }
    return Settings(_env_file=None, **values)


def enrollment_body(external_id: str, phone: str | None, **fields: Any) -> dict[str, Any]:
    """The JSON body enrolling one patient on the test plan, in UTC."""
    return {
        "external_id": external_id,
        "first_name": external_id.title(),
        "phone": phone,
        "timezone": "UTC",
        "plan": "knee",
        "procedure_date": PROCEDURE_DATE,
        "sms_consent": True,
        **fields,
    }


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature for a form post, computed as Twilio does."""
    return str(RequestValidator(token).compute_signature(url, params))


@dataclass
class World:
    """The API, its database and a dispatcher, at a frozen instant the test moves."""

    app: App
    client: TestClient
    key: str
    clock: FrozenDateTimeFactory | StepTickTimeFactory | TickingDateTimeFactory
    sms: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("sms"))
    email: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("email"))
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def headers(self) -> dict[str, str]:
        """Headers of an authenticated staff request."""
        return {"Authorization": f"Bearer {self.key}"}

    def at(self, instant: str) -> None:
        """Move the frozen clock."""
        self.clock.move_to(instant)

    def enroll(self, external_id: str, phone: str | None, **fields: Any) -> Response:
        """POST /v1/enrollments for a patient on the test plan, in UTC."""
        body = enrollment_body(external_id, phone, **fields)
        return self.client.post("/v1/enrollments", json=body, headers=self.headers)

    def send_due(self) -> PassReport:
        """One dispatcher pass at the frozen instant; then, as the running service does after
        each pass (ReplyService.after_pass), the delivery reports kept until it committed."""
        dispatcher = Dispatcher(
            self.app.storage,
            self.app.catalog,
            {"sms": self.sms, "email": self.email},
            self.app.dispatch_settings(),
        )
        report = dispatcher.run_once()
        self.app.replies().apply_early_reports()
        return report

    def text(
        self, from_phone: str, body: str, *, sid: str | None = None, to: str = CLINIC_NUMBER
    ) -> Response:
        """A patient's SMS, as Twilio posts it to /twilio/inbound (signed)."""
        params = {
            "MessageSid": sid or f"SMin{next(self._sids):030x}",
            "AccountSid": "AC" + "0" * 32,
            "From": from_phone,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        return self.post_signed("/twilio/inbound", params)

    def status(
        self, sid: str, status: str, error_code: str | None = None, *, to: str | None = None
    ) -> Response:
        """A delivery report, as Twilio posts it to /twilio/status (signed); `to`, the number
        texted, as Twilio sends it."""
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
        if error_code:
            params["ErrorCode"] = error_code
        if to:
            params["To"] = to
        return self.post_signed("/twilio/status", params)

    def post_signed(self, path: str, params: dict[str, str]) -> Response:
        """POST a form with a valid Twilio signature."""
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, params)}
        return self.client.post(path, data=params, headers=headers)

    def timeline(self, external_id: str) -> dict[str, Any]:
        """GET /v1/patients/{id}/timeline."""
        response = self.client.get(f"/v1/patients/{external_id}/timeline", headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def message(self, external_id: str, step_id: str) -> dict[str, Any]:
        """One message of a patient's timeline."""
        return next(m for m in self.timeline(external_id)["messages"] if m["step_id"] == step_id)

    def get(self, path: str, **params: Any) -> Any:
        """An authenticated GET that must succeed; its JSON."""
        response = self.client.get(path, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()


def run_send_due(world: World, root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`reminders send-due ARGS` through the CLI, as cron runs it beside the API: its own App
    on the world's database and plans, sending through the world's channels."""
    channels: dict[str, Channel] = {"sms": world.sms, "email": world.email}
    monkeypatch.setattr(registry, "build_channels", lambda settings: channels)
    monkeypatch.chdir(root)  # no .env from the developer's checkout
    settings = world.app.settings
    env = {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
        "REMINDERS_OUTBOX_FILE": str(root / "outbox.log"),
    }
    return CliRunner().invoke(cli, ["send-due", *args], env=env)


@contextmanager
def running_world(root: Path, database_url: str | None = None) -> Iterator[World]:
    """A fresh service at the moment patients are enrolled (see ENROLLED_AT)."""
    overrides = {"database_url": database_url} if database_url else {}
    with freeze_time(ENROLLED_AT, real_asyncio=True) as clock:
        app = App.from_settings(make_settings(root, **overrides))
        key, _ = create_key(app, "tests")
        with TestClient(create_app(app), raise_server_exceptions=True) as client:
            yield World(app, client, key, clock)
        app.close()


def utc(instant: str) -> datetime:
    """An ISO instant as an aware datetime."""
    return datetime.fromisoformat(instant.replace("Z", "+00:00"))


def twiml_message(response_text: str) -> str | None:
    """The one SMS a TwiML answer sends back, or None."""
    if "<Message>" not in response_text:
        return None
    return response_text.split("<Message>")[1].split("</Message>")[0].replace("&apos;", "'")
