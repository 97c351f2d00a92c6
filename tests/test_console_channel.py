"""ConsoleChannel (the default), NullChannel and the default choice of channels."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.channels.console import ConsoleChannel
from reminders.channels.null import NullChannel
from reminders.channels.registry import build_channels, describe_channels
from reminders.errors import SettingsError
from reminders.settings import Settings

A_MINUTE = timedelta(minutes=1)


def sms(
    outbox_id: int = 1, to: str = "+15551234567", body: str = "Take 1 tablet."
) -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, channel="sms", to=to, body=body)


def email(outbox_id: int = 1) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=outbox_id,
        channel="email",
        to="ana@patient.example",
        subject="Day 3: knee exercises",
        body="Hi Ana,\nTime for today's exercises.",
        html="<p>Hi Ana,</p>",
    )


def outbox_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def channel_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("reminders"))


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "var" / "nested" / "outbox.log"


def test_prints_a_readable_block_with_the_recipient_masked(outbox: Path) -> None:
    stream = io.StringIO()

    ConsoleChannel("email", outbox, stream=stream).send(email(outbox_id=12))

    printed = stream.getvalue()
    assert "email #12" in printed
    assert "To:      a***@patient.example" in printed
    assert "Subject: Day 3: knee exercises" in printed
    assert "Hi Ana,\nTime for today's exercises." in printed
    assert "ana@patient.example" not in printed


def test_prints_to_stdout_by_default(outbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleChannel("sms", outbox).send(sms(body="Ice your knee."))

    printed = capsys.readouterr().out
    assert "Ice your knee." in printed
    assert "+1********67" in printed
    assert "+15551234567" not in printed


def test_appends_one_json_line_per_message_with_the_real_recipient(outbox: Path) -> None:
    channel = ConsoleChannel("email", outbox, stream=io.StringIO())

    channel.send(email(outbox_id=1))
    channel.send(email(outbox_id=2))

    first, second = outbox_lines(outbox)
    assert [first["outbox_id"], second["outbox_id"]] == [1, 2]
    assert first["to"] == "ana@patient.example"
    assert first["channel"] == "email"
    assert first["subject"] == "Day 3: knee exercises"
    assert first["body"] == "Hi Ana,\nTime for today's exercises."
    assert first["html"] == "<p>Hi Ana,</p>"
    assert first["provider_message_id"] == "console-1"


def test_receipt_id_names_the_outbox_id(outbox: Path) -> None:
    receipt = ConsoleChannel("sms", outbox, stream=io.StringIO()).send(sms(outbox_id=31))

    assert receipt == DeliveryReceipt(provider_message_id="console-31", provider_status="sent")


def test_logs_mask_the_recipient(outbox: Path, caplog: pytest.LogCaptureFixture) -> None:
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO())

    with caplog.at_level(logging.DEBUG):
        channel.send(sms(to="+15551234567"))

    assert "+1********67" in channel_log(caplog)
    assert "+15551234567" not in channel_log(caplog)


def test_find_sent_finds_an_appended_message(outbox: Path) -> None:
    before = datetime.now(UTC) - A_MINUTE
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO())
    channel.send(sms(outbox_id=5))

    found = ConsoleChannel("sms", outbox).find_sent(sms(outbox_id=5), since=before)

    assert found == DeliveryReceipt(provider_message_id="console-5")


def test_find_sent_ignores_other_ids_other_channels_and_older_lines(outbox: Path) -> None:
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO())
    ConsoleChannel("email", outbox, stream=io.StringIO()).send(email(outbox_id=8))
    channel.send(sms(outbox_id=5))
    now = datetime.now(UTC)

    assert channel.find_sent(sms(outbox_id=6), since=now - A_MINUTE) is None
    assert channel.find_sent(sms(outbox_id=8), since=now - A_MINUTE) is None
    assert channel.find_sent(sms(outbox_id=5), since=now + A_MINUTE) is None


def test_find_sent_compares_with_the_injected_clock(outbox: Path) -> None:
    sent_at = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO(), clock=lambda: sent_at)
    channel.send(sms(outbox_id=5))

    assert outbox_lines(outbox)[0]["sent_at"] == "2030-01-02T09:00:00+00:00"
    assert channel.find_sent(sms(outbox_id=5), since=sent_at) is not None
    assert channel.find_sent(sms(outbox_id=5), since=sent_at + A_MINUTE) is None


def test_find_sent_takes_a_naive_since_as_utc(outbox: Path) -> None:
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO())
    channel.send(sms(outbox_id=5))
    naive_utc_now = datetime.now(UTC).replace(tzinfo=None)

    assert channel.find_sent(sms(outbox_id=5), since=naive_utc_now - A_MINUTE) is not None
    assert channel.find_sent(sms(outbox_id=5), since=naive_utc_now + A_MINUTE) is None


def test_find_sent_skips_a_torn_last_line(outbox: Path) -> None:
    channel = ConsoleChannel("sms", outbox, stream=io.StringIO())
    channel.send(sms(outbox_id=5))
    with outbox.open("a", encoding="utf-8") as file:
        file.write('{"outbox_id": 6, "chan')
    since = datetime.now(UTC) - A_MINUTE

    assert channel.find_sent(sms(outbox_id=6), since=since) is None
    assert channel.find_sent(sms(outbox_id=5), since=since) is not None


def test_find_sent_without_an_outbox_file_finds_nothing(outbox: Path) -> None:
    found = ConsoleChannel("sms", outbox).find_sent(sms(), since=datetime.now(UTC) - A_MINUTE)

    assert found is None


def test_concurrent_writers_never_interleave_lines(outbox: Path) -> None:
    long_body = "x" * 20_000
    start = threading.Barrier(2)

    def write_many(first_id: int) -> None:
        channel = ConsoleChannel("sms", outbox, stream=io.StringIO())
        start.wait(timeout=5)
        for outbox_id in range(first_id, first_id + 50):
            channel.send(sms(outbox_id=outbox_id, body=long_body))

    writers = [threading.Thread(target=write_many, args=(n,)) for n in (0, 1000)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)

    records = outbox_lines(outbox)
    assert sorted(int(str(r["outbox_id"])) for r in records) == [
        *range(50),
        *range(1000, 1050),
    ]
    assert all(r["body"] == long_body for r in records)


def test_a_failing_console_does_not_fail_the_delivery(outbox: Path) -> None:
    closed = io.StringIO()
    closed.close()

    receipt = ConsoleChannel("sms", outbox, stream=closed).send(sms(outbox_id=3))

    assert receipt.provider_message_id == "console-3"
    assert [r["outbox_id"] for r in outbox_lines(outbox)] == [3]


def test_only_sms_and_email_consoles_exist(outbox: Path) -> None:
    with pytest.raises(ValueError):
        ConsoleChannel("fax", outbox)


def test_null_channel_counts_and_answers_a_receipt() -> None:
    channel = NullChannel("sms")

    receipts = [channel.send(sms(outbox_id=n)) for n in (1, 2, 3)]

    assert channel.sent == 3
    assert [r.provider_message_id for r in receipts] == ["null-1", "null-2", "null-3"]


def settings(outbox: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_account_sid": None,
        "twilio_auth_token": None,
        "smtp_host": None,
        "outbox_file": outbox,
        "clinic_name": "Riverside Spine Clinic",
        "clinic_phone": "+12025550100",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def test_registry_uses_the_console_when_nothing_is_configured(outbox: Path) -> None:
    channels = build_channels(settings(outbox))

    assert set(channels) == {"sms", "email"}
    assert all(isinstance(c, ConsoleChannel) for c in channels.values())
    assert [channels["sms"].name, channels["email"].name] == ["sms", "email"]
    assert describe_channels(channels) == (
        f"sms via console (outbox {outbox}), email via console (outbox {outbox})"
    )


def test_registry_uses_twilio_when_both_credentials_are_set(
    outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class StandInTwilio(NullChannel):
        account_sid: str | None = None

        @classmethod
        def from_settings(cls, settings: Settings) -> StandInTwilio:
            channel = cls("sms")
            channel.account_sid = settings.twilio_account_sid
            return channel

    module = types.ModuleType("reminders.channels.twilio_sms")
    module.TwilioSmsChannel = StandInTwilio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reminders.channels.twilio_sms", module)

    channels = build_channels(settings(outbox, twilio_account_sid="AC1", twilio_auth_token="t"))

    sms_channel: Channel = channels["sms"]
    assert isinstance(sms_channel, StandInTwilio)
    assert sms_channel.account_sid == "AC1"
    assert isinstance(channels["email"], ConsoleChannel)


def test_registry_warns_when_twilio_is_half_configured(
    outbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        channels = build_channels(settings(outbox, twilio_account_sid="AC1"))

    assert isinstance(channels["sms"], ConsoleChannel)
    assert "only one is set" in channel_log(caplog)


def test_registry_refuses_real_channels_without_the_clinics_name_and_phone(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        twilio_from_number="+12025550100",
        outbox_file=tmp_path / "outbox.log",
    )
    with pytest.raises(SettingsError) as raised:
        build_channels(settings)
    assert "REMINDERS_CLINIC_NAME" in str(raised.value)
    assert "REMINDERS_CLINIC_PHONE" in str(raised.value)
