"""`reminders doctor`, the startup banner and `/health`: the database, the plans and each
channel's credentials, checked against real parts (the Twilio stand-in in its own process,
aiosmtpd with STARTTLS and login), without texting or emailing anyone."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from plan_fixtures import write_demo_plan
from smtp_fixtures import SmtpTestServer, make_self_signed_certificate, server_tls_context
from twilio_process import StandInProcess, standin_process
from typer.testing import CliRunner

from reminders.api.app import create_app
from reminders.app import App
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.cli.dispatch import banner, check_channels_at_start
from reminders.cli.main import app as cli
from reminders.dispatch.service import DispatchService
from reminders.errors import DeliveryError, FailureKind
from reminders.settings import Settings
from reminders.testing.memory_channel import InMemoryChannel
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[SmtpTestServer]:
    with SmtpTestServer(
        with_auth=True, tls_context=server_tls_context(*certificate), require_starttls=True
    ) as server:
        yield server


@pytest.fixture
def twilio(tmp_path: Path) -> Iterator[StandInProcess]:
    with standin_process(tmp_path) as process:
        yield process


def environment(
    tmp_path: Path,
    database_url: str,
    twilio: StandInProcess,
    smtp: SmtpTestServer,
    certificate: Path,
    **overrides: str,
) -> dict[str, str]:
    plans, templates = write_demo_plan(tmp_path)
    return {
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_PLANS_DIR": str(plans),
        "REMINDERS_TEMPLATES_DIR": str(templates),
        "REMINDERS_CLINIC_NAME": "Riverside Clinic",
        "REMINDERS_CLINIC_PHONE": "+12025550100",
        "REMINDERS_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "REMINDERS_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "REMINDERS_TWILIO_FROM_NUMBER": "+15005550006",
        "REMINDERS_TWILIO_BASE_URL": twilio.url,
        "REMINDERS_SMTP_HOST": smtp.host,
        "REMINDERS_SMTP_PORT": str(smtp.port),
        "REMINDERS_SMTP_USERNAME": "clinic",
        "REMINDERS_SMTP_PASSWORD": "secret",
        "REMINDERS_SMTP_FROM": "clinic@example.org",
        "SSL_CERT_FILE": str(certificate),  # the test server's self-signed certificate
        **overrides,
    }


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict[str, object]]]:
    result = CliRunner().invoke(cli, ["doctor", "--json"], env=env)
    assert "Traceback" not in result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return result.exit_code, checks


def test_doctor_passes_and_texts_or_emails_nobody(
    tmp_path: Path,
    database_url: str,
    twilio: StandInProcess,
    smtp: SmtpTestServer,
    certificate: tuple[Path, Path],
) -> None:
    env = environment(tmp_path, database_url, twilio, smtp, certificate[0])
    CliRunner().invoke(cli, ["db", "upgrade"], env=env)

    code, checks = doctor(env)

    assert code == 0, checks
    assert list(checks) == ["database", "plans", "email", "sms"]
    assert all(check["ok"] for check in checks.values())
    assert "demo v1" in str(checks["plans"]["detail"])
    assert smtp.handler.logins == ["clinic"]
    assert smtp.received == []
    assert twilio.created() == []


def test_doctor_names_each_failure(
    tmp_path: Path,
    database_url: str,
    twilio: StandInProcess,
    smtp: SmtpTestServer,
    certificate: tuple[Path, Path],
) -> None:
    env = environment(
        tmp_path,
        database_url,
        twilio,
        smtp,
        certificate[0],
        REMINDERS_TWILIO_AUTH_TOKEN="wrong-token",
        REMINDERS_SMTP_PASSWORD="wrong",
    )
    (tmp_path / "plans" / "demo.yaml").write_text("id: demo\nsteps: [\n")

    code, checks = doctor(env)

    assert code == 1
    assert {name: c["ok"] for name, c in checks.items()} == {
        "database": False,  # never migrated: doctor changes nothing
        "plans": False,
        "email": False,
        "sms": False,
    }
    assert "reminders db upgrade" in str(checks["database"]["detail"])
    assert "20003" in str(checks["sms"]["detail"])
    assert "login" in str(checks["email"]["detail"])
    assert smtp.received == []
    assert twilio.created() == []


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    plans, templates = write_demo_plan(tmp_path)
    return Settings(
        _env_file=None,
        database_url=database_url,
        plans_dir=plans,
        templates_dir=templates,
        clinic_name="Riverside Clinic",
        clinic_phone="+12025550100",
    )


def test_a_misconfigured_channel_is_stopped_at_start_shown_in_the_banner_and_in_health(
    tmp_path: Path, database_url: str, certificate: tuple[Path, Path]
) -> None:
    with SmtpTestServer() as no_starttls:
        app = App.from_settings(settings_for(tmp_path, database_url))
        email = SmtpEmailChannel(
            no_starttls.host,
            no_starttls.port,
            from_address="clinic@example.org",
            timeout=5,
            ssl_context=ssl.create_default_context(cafile=str(certificate[0])),
        )
        dispatcher = app.dispatcher({"sms": InMemoryChannel("sms"), "email": email})
        service = DispatchService(dispatcher)

        check_channels_at_start(dispatcher)
        lines = banner(app, dispatcher, "off")
        response = TestClient(create_app(app, service)).get("/health")
        app.close()

    stopped = [line for line in lines if "STOPPED" in line]
    assert len(stopped) == 1
    assert "email" in stopped[0]
    assert "STARTTLS" in stopped[0]
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert {c["name"]: c["state"] for c in body["channels"]} == {"email": "stopped", "sms": "ok"}
    assert "STARTTLS" in body["channels"][0]["reason"]


def test_health_is_ok_when_the_database_answers_and_every_channel_sends(
    tmp_path: Path, database_url: str
) -> None:
    app = App.from_settings(settings_for(tmp_path, database_url))
    dispatcher = app.dispatcher({"sms": InMemoryChannel("sms"), "email": InMemoryChannel("email")})
    client = TestClient(create_app(app, DispatchService(dispatcher)))

    ok = client.get("/health")
    dispatcher.health.stop(
        "sms",
        DeliveryError("Authenticate", code="20003", kind=FailureKind.CHANNEL_CONFIGURATION),
        datetime.now(UTC),
    )
    stopped = client.get("/health")
    dispatcher.health.resume("sms")
    resumed = client.get("/health")
    app.close()

    assert (ok.status_code, ok.json()["status"]) == (200, "ok")
    assert ok.json()["database"].startswith("answers")
    assert stopped.status_code == 503
    assert stopped.json()["channels"][1]["reason"] == "Authenticate (code 20003)"
    assert resumed.status_code == 200
