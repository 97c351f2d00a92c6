"""SmtpEmailChannel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from smtp_fixtures import (
    SmtpTestServer,
    make_self_signed_certificate,
    server_tls_context,
)

from reminders.channels.base import OutgoingMessage
from reminders.channels.console import ConsoleChannel
from reminders.channels.registry import build_channels, describe_channels
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.errors import DeliveryError, FailureKind
from reminders.settings import Settings

FROM = "Riverside Clinic <reminders@clinic.example>"


def channel_log(caplog: pytest.LogCaptureFixture) -> str:
    """What our code logged (the test server logs whole addresses, as servers do)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("reminders"))


def email(outbox_id: int = 1, to: str = "ana@patient.example", **fields: str) -> OutgoingMessage:
    fields.setdefault("subject", "Your knee exercises")
    fields.setdefault("body", "Hi Ana,\nTime for today's exercises.")
    return OutgoingMessage(outbox_id=outbox_id, channel="email", to=to, **fields)


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def channel(smtp_server: SmtpTestServer) -> Iterator[SmtpEmailChannel]:
    smtp = SmtpEmailChannel(
        smtp_server.host, smtp_server.port, from_address=FROM, starttls=False, timeout=5
    )
    yield smtp
    smtp.close()


def test_text_and_html_parts_arrive_intact(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    body = "Hi Ana,\nRemember: ice 20 min – then rest. ✓"
    html = "<p>Hi Ana,</p><p>Remember: <b>ice 20 min</b> – then rest. ✓</p>"

    channel.send(email(body=body, html=html))

    [received] = smtp_server.received
    parsed = received.parsed()
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    plain, rich = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().rstrip("\n") == body
    assert rich.get_content().rstrip("\n") == html


def test_text_only_message_is_plain_text(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    channel.send(email(body="Just text."))

    parsed = smtp_server.received[0].parsed()
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().rstrip("\n") == "Just text."


def test_headers_and_envelope(smtp_server: SmtpTestServer, channel: SmtpEmailChannel) -> None:
    channel.send(email(subject="Día 3: ejercicios de rodilla"))

    [received] = smtp_server.received
    parsed = received.parsed()
    assert parsed["Subject"] == "Día 3: ejercicios de rodilla"
    assert parsed["From"] == FROM
    assert parsed["To"] == "ana@patient.example"
    assert parsed["Date"] is not None
    assert received.mail_from == "reminders@clinic.example"
    assert received.rcpt_tos == ["ana@patient.example"]


def test_message_id_carries_the_outbox_id(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    receipt = channel.send(email(outbox_id=4217))

    assert smtp_server.received[0].parsed()["Message-ID"] == "<reminder-4217@clinic.example>"
    assert receipt.provider_message_id == "<reminder-4217@clinic.example>"
    assert receipt.provider_status == "sent"


def test_several_sends_share_one_connection(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    for outbox_id in (1, 2, 3):
        channel.send(email(outbox_id=outbox_id))

    assert len(smtp_server.received) == 3
    assert len({received.peer for received in smtp_server.received}) == 1


def test_reconnects_after_the_server_dropped_the_connection(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    channel.send(email(outbox_id=1))
    smtp_server.drop_connections()

    channel.send(email(outbox_id=2))

    first, second = smtp_server.received
    assert first.peer != second.peer
    assert second.parsed()["Message-ID"] == "<reminder-2@clinic.example>"


def test_close_says_quit(smtp_server: SmtpTestServer, channel: SmtpEmailChannel) -> None:
    channel.send(email())

    channel.close()

    smtp_server.wait_for_no_connections()
    assert smtp_server.handler.quits == [smtp_server.received[0].peer]


def test_temporary_refusal_is_retryable_with_its_code(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    smtp_server.handler.rcpt_replies["ana@patient.example"] = "451 4.3.0 Try again later"

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert caught.value.retryable is True
    assert caught.value.code == "451"
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("reply", "code"),
    [("550 5.1.1 Mailbox unavailable", "550"), ("553 5.1.3 Bad destination syntax", "553")],
)
def test_permanent_refusal_is_not_retryable(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel, reply: str, code: str
) -> None:
    smtp_server.handler.rcpt_replies["ana@patient.example"] = reply

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert caught.value.retryable is False
    assert caught.value.code == code


def test_refused_data_is_permanent(smtp_server: SmtpTestServer, channel: SmtpEmailChannel) -> None:
    smtp_server.handler.data_reply = "554 5.6.0 Message content rejected"

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert (caught.value.code, caught.value.retryable) == ("554", False)


def test_refusal_keeps_the_connection_for_the_next_message(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    smtp_server.handler.rcpt_replies["gone@patient.example"] = "550 5.1.1 Mailbox unavailable"
    channel.send(email(outbox_id=1))
    with pytest.raises(DeliveryError):
        channel.send(email(outbox_id=2, to="gone@patient.example"))

    channel.send(email(outbox_id=3))

    first, third = smtp_server.received
    assert first.peer == third.peer


def test_error_text_masks_the_address_the_server_quoted(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    smtp_server.handler.rcpt_replies["ana@patient.example"] = (
        "550 5.1.1 <ana@patient.example>: Recipient address rejected"
    )

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert "ana@patient.example" not in str(caught.value)
    assert "a***@patient.example" in str(caught.value)


def test_partly_refused_recipients_still_count_as_sent(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.handler.rcpt_replies["bo@family.example"] = "550 5.1.1 Mailbox unavailable"

    with caplog.at_level(logging.INFO):
        receipt = channel.send(email(to="ana@patient.example, bo@family.example"))

    assert receipt.provider_status == "partial"
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ana@patient.example"]
    assert "b***@family.example (550)" in channel_log(caplog)
    assert "bo@family.example" not in channel_log(caplog)


def test_all_recipients_refused_is_retryable_if_any_refusal_was_temporary(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel
) -> None:
    smtp_server.handler.rcpt_replies.update(
        {"ana@patient.example": "550 5.1.1 Unknown", "bo@family.example": "452 4.2.2 Over quota"}
    )

    with pytest.raises(DeliveryError) as caught:
        channel.send(email(to="ana@patient.example, bo@family.example"))

    assert (caught.value.code, caught.value.retryable) == ("452", True)
    assert caught.value.extra == {"a***@patient.example": "550", "b***@family.example": "452"}


def test_refused_connection_is_retryable() -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        channel = SmtpEmailChannel("127.0.0.1", port, from_address=FROM, starttls=False)

        with pytest.raises(DeliveryError) as caught:
            channel.send(email())

    assert caught.value.retryable is True
    assert caught.value.code is None


def test_silent_server_times_out_as_retryable() -> None:
    with socket.socket() as never_greets:
        never_greets.bind(("127.0.0.1", 0))
        never_greets.listen()
        port = never_greets.getsockname()[1]
        channel = SmtpEmailChannel(
            "127.0.0.1", port, from_address=FROM, starttls=False, timeout=0.2
        )

        with pytest.raises(DeliveryError) as caught:
            channel.send(email())

    assert caught.value.retryable is True


def test_logs_mask_the_address(
    smtp_server: SmtpTestServer, channel: SmtpEmailChannel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        channel.send(email(to="ana@patient.example"))

    assert "a***@patient.example" in channel_log(caplog)
    assert "ana@patient.example" not in channel_log(caplog)


def test_starttls_required_but_not_offered_is_a_configuration_error(
    smtp_server: SmtpTestServer,
) -> None:
    channel = SmtpEmailChannel(smtp_server.host, smtp_server.port, from_address=FROM, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert caught.value.kind is FailureKind.CHANNEL_CONFIGURATION
    assert "STARTTLS" in caught.value.message


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[SmtpTestServer]:
    with SmtpTestServer(
        with_auth=True, tls_context=server_tls_context(*certificate), require_starttls=True
    ) as server:
        yield server


def tls_channel(server: SmtpTestServer, cert: Path, password: str) -> SmtpEmailChannel:
    return SmtpEmailChannel(
        server.host,
        server.port,
        from_address=FROM,
        username="clinic",
        password=password,
        starttls=True,
        timeout=5,
        ssl_context=ssl.create_default_context(cafile=str(cert)),
    )


def test_starttls_and_login(tls_server: SmtpTestServer, certificate: tuple[Path, Path]) -> None:
    channel = tls_channel(tls_server, certificate[0], password="secret")

    channel.send(email())
    channel.close()

    assert tls_server.handler.logins == ["clinic"]
    assert len(tls_server.received) == 1


def test_wrong_password_is_a_configuration_error_with_code(
    tls_server: SmtpTestServer, certificate: tuple[Path, Path]
) -> None:
    channel = tls_channel(tls_server, certificate[0], password="wrong")

    with pytest.raises(DeliveryError) as caught:
        channel.send(email())

    assert (caught.value.code, caught.value.kind) == ("535", FailureKind.CHANNEL_CONFIGURATION)
    assert tls_server.received == []


def test_check_connects_starttls_logs_in_and_sends_nothing(
    tls_server: SmtpTestServer, certificate: tuple[Path, Path]
) -> None:
    tls_channel(tls_server, certificate[0], password="secret").check()

    assert tls_server.handler.logins == ["clinic"]
    assert tls_server.received == []
    tls_server.wait_for_no_connections()


def test_check_with_a_wrong_password_is_a_configuration_error(
    tls_server: SmtpTestServer, certificate: tuple[Path, Path]
) -> None:
    with pytest.raises(DeliveryError) as caught:
        tls_channel(tls_server, certificate[0], password="wrong").check()

    assert caught.value.kind is FailureKind.CHANNEL_CONFIGURATION


def test_check_of_an_unreachable_server_is_a_delivery_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = SmtpEmailChannel("127.0.0.1", port, from_address=FROM, starttls=False, timeout=2)

    with pytest.raises(DeliveryError) as caught:
        channel.check()

    assert caught.value.kind is FailureKind.RETRY


def test_registry_uses_smtp_when_a_host_is_configured(
    smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_starttls=False,
        smtp_from=FROM,
        twilio_account_sid=None,
        twilio_auth_token=None,
        outbox_file=tmp_path / "outbox.log",
        clinic_name="Riverside Spine Clinic",
        clinic_phone="+12025550100",
    )

    channels = build_channels(settings)
    channels["email"].send(email(outbox_id=7))
    channels["email"].close()

    assert isinstance(channels["email"], SmtpEmailChannel)
    assert isinstance(channels["sms"], ConsoleChannel)
    assert smtp_server.received[0].parsed()["Message-ID"] == "<reminder-7@clinic.example>"
    assert describe_channels(channels) == (
        f"sms via console (outbox {tmp_path / 'outbox.log'}), "
        f"email via SMTP {smtp_server.host}:{smtp_server.port}"
    )
