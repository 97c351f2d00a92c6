"""TwilioSmsChannel (the real twilio client) against the loopback Twilio stand-in, whose
exchanges are checked against Twilio's own OpenAPI document."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio_contract import TwilioContract

from reminders.channels.base import OutgoingMessage
from reminders.channels.twilio_sms import (
    RECONCILE_MAX_PAGES,
    TwilioSmsChannel,
    classify_twilio_code,
)
from reminders.errors import DeliveryError, FailureKind
from reminders.settings import Settings
from reminders.testing.twilio_standin import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    Exchange,
    Fault,
    TwilioStandIn,
)

SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared/twilio-openapi/twilio_api_v2010.json"
)
SENDER = "+15005550006"
SERVICE_SID = "MG" + "a1" * 16
PATIENT = "+15551234567"


def sms(
    to: str = PATIENT, body: str = "Time for your knee exercises.", outbox_id: int = 1
) -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, channel="sms", to=to, body=body)


class Clock:
    """The stand-in's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def standin(clock: Clock) -> Iterator[TwilioStandIn]:
    with TwilioStandIn(clock=clock) as server:
        yield server


@pytest.fixture
def channel(standin: TwilioStandIn) -> Iterator[TwilioSmsChannel]:
    twilio = TwilioSmsChannel(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=SENDER, base_url=standin.url, timeout=5
    )
    yield twilio
    twilio.close()


@pytest.fixture(scope="module")
def contract() -> TwilioContract:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Twilio's OpenAPI document is not at {SPEC_PATH}")
    return TwilioContract.from_path(SPEC_PATH)


def send_error(channel: TwilioSmsChannel, message: OutgoingMessage | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        channel.send(message or sms())
    return caught.value


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Sending


def test_send_returns_the_sid_and_twilio_sees_to_from_and_body(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    receipt = channel.send(sms(body="Ice 20 min – then rest ✓"))

    [exchange] = standin.exchanges
    assert exchange.method == "POST"
    assert exchange.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    assert exchange.form == {"To": PATIENT, "From": SENDER, "Body": "Ice 20 min – then rest ✓"}
    assert receipt.provider_message_id == exchange.response_json()["sid"]
    assert receipt.provider_message_id is not None
    assert receipt.provider_message_id.startswith("SM")
    assert receipt.provider_status == "queued"


def test_messaging_service_sid_is_sent_instead_of_a_from_number(standin: TwilioStandIn) -> None:
    channel = TwilioSmsChannel(
        TEST_ACCOUNT_SID,
        TEST_AUTH_TOKEN,
        messaging_service_sid=SERVICE_SID,
        status_callback="https://clinic.example/twilio/status",
        base_url=standin.url,
    )

    receipt = channel.send(sms())

    assert standin.exchanges[0].form == {
        "To": PATIENT,
        "MessagingServiceSid": SERVICE_SID,
        "Body": sms().body,
        "StatusCallback": "https://clinic.example/twilio/status",
    }
    assert standin.messages[0]["messaging_service_sid"] == SERVICE_SID
    assert receipt.provider_message_id == standin.messages[0]["sid"]


def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioSmsChannel(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)


def test_from_settings_builds_a_channel_that_sends(standin: TwilioStandIn) -> None:
    settings = Settings(
        _env_file=None,
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_from_number=SENDER,
        twilio_base_url=standin.url + "/",
    )
    channel = TwilioSmsChannel.from_settings(settings)

    channel.send(sms())

    assert standin.messages[0]["from"] == SENDER
    assert standin.url in channel.describe()


def test_from_settings_needs_credentials() -> None:
    settings = Settings(_env_file=None, twilio_account_sid=None)
    with pytest.raises(ValueError, match="twilio_account_sid"):
        TwilioSmsChannel.from_settings(settings)


def test_sends_reuse_one_keep_alive_connection(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    for outbox_id in range(50):
        channel.send(sms(outbox_id=outbox_id, body=f"Reminder {outbox_id}"))

    assert len(standin.messages) == 50
    assert len({exchange.client for exchange in standin.exchanges}) == 1


# Failures


def test_throttling_is_retried(standin: TwilioStandIn, channel: TwilioSmsChannel) -> None:
    standin.fail_next(status=429)

    error = send_error(channel)

    assert (error.kind, error.code, error.retryable) == (FailureKind.RETRY, "20429", True)
    assert error.extra["http_status"] == "429"
    assert channel.send(sms()).provider_message_id  # the next attempt goes through


@pytest.mark.parametrize(("status", "code"), [(500, "20500"), (503, "20503")])
def test_a_server_error_leaves_the_outcome_unknown_never_retried_blind(
    standin: TwilioStandIn, channel: TwilioSmsChannel, status: int, code: str
) -> None:
    standin.fail_next(status=status)

    error = send_error(channel)

    assert (error.kind, error.code, error.retryable) == (FailureKind.UNKNOWN_OUTCOME, code, False)


def test_a_500_after_twilio_created_the_message_is_found_by_reconciliation(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    since = datetime.now(UTC)
    standin.fault_next(Fault.ACCEPT_THEN_500)

    error = send_error(channel)
    found = channel.find_sent(sms(), since)

    assert error.kind is FailureKind.UNKNOWN_OUTCOME
    assert [m["body"] for m in standin.messages] == [sms().body]
    assert found is not None
    assert found.provider_message_id == standin.messages[0]["sid"]


def test_an_invalid_number_is_permanent_with_twilios_code(channel: TwilioSmsChannel) -> None:
    error = send_error(channel, sms(to="555-1234"))

    assert not error.retryable
    assert error.code == "21211"
    assert error.message.endswith("The 'To' number 55****34 is not a valid phone number.")


def test_a_scripted_21211_is_permanent(standin: TwilioStandIn, channel: TwilioSmsChannel) -> None:
    standin.fail_next(status=400, code=21211, message="The 'To' number is not valid.")

    error = send_error(channel)

    assert (error.code, error.retryable) == ("21211", False)
    assert "The 'To' number is not valid." in error.message


@pytest.mark.parametrize("code", [21610, 21614, 21408, 21612])
def test_recipient_refusals_are_permanent_with_twilios_code(
    standin: TwilioStandIn, channel: TwilioSmsChannel, code: int
) -> None:
    standin.fail_recipient(PATIENT, code=code)

    error = send_error(channel)

    assert not error.retryable
    assert error.code == str(code)
    assert channel.send(sms(to="+15557654321")).provider_message_id  # others still get theirs


def test_a_full_sender_queue_is_retryable(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    standin.fail_next(status=400, code=21611, message="This 'From' number has exceeded the queue")

    assert send_error(channel).retryable


def test_wrong_credentials_are_permanent(standin: TwilioStandIn) -> None:
    channel = TwilioSmsChannel(
        TEST_ACCOUNT_SID, "wrong-token", from_number=SENDER, base_url=standin.url
    )

    error = send_error(channel)

    assert (error.code, error.kind) == ("20003", FailureKind.CHANNEL_CONFIGURATION)
    assert standin.exchanges[0].status == 401
    assert standin.messages == []


def test_a_stopped_twilio_is_a_network_error(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    channel.send(sms())  # leaves a pooled keep-alive connection behind
    standin.stop()

    error = send_error(channel)

    assert error.code == "network"


def test_a_closed_port_is_retried_as_twilio_never_saw_the_request() -> None:
    channel = TwilioSmsChannel(
        TEST_ACCOUNT_SID,
        TEST_AUTH_TOKEN,
        from_number=SENDER,
        base_url=f"http://127.0.0.1:{unused_port()}",
    )

    error = send_error(channel)

    assert (error.code, error.kind) == ("network", FailureKind.RETRY)


def test_a_silent_twilio_is_a_timeout_with_an_unknown_outcome() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        channel = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=SENDER, base_url=url, timeout=0.2
        )

        error = send_error(channel)

    assert (error.code, error.kind) == ("timeout", FailureKind.UNKNOWN_OUTCOME)


# Reconciliation


def test_find_sent_finds_a_message_sent_earlier(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    sent = channel.send(sms())
    channel.send(sms(body="Another reminder"))

    found = channel.find_sent(sms(), since)

    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert found.provider_status == "sent"
    assert standin.exchanges[-1].query["To"] == PATIENT


def test_find_sent_returns_none_for_a_message_never_sent(channel: TwilioSmsChannel) -> None:
    channel.send(sms(body="Something else"))
    channel.send(sms(to="+15557654321"))

    assert channel.find_sent(sms(), datetime.now(UTC) - timedelta(hours=1)) is None


def test_find_sent_ignores_messages_from_before_the_day_of_since(
    clock: Clock, channel: TwilioSmsChannel
) -> None:
    clock.now = datetime.now(UTC) - timedelta(days=3)
    channel.send(sms())
    clock.now = datetime.now(UTC)

    assert channel.find_sent(sms(), datetime.now(UTC) - timedelta(days=4)) is not None
    assert channel.find_sent(sms(), datetime.now(UTC)) is None


def test_find_sent_takes_a_naive_since_as_utc(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    channel.send(sms())
    naive = datetime.now(UTC).replace(tzinfo=None)

    assert channel.find_sent(sms(), naive) is not None
    assert channel.find_sent(sms(), naive + timedelta(hours=1)) is None


def test_find_sent_finds_a_message_still_queued_at_twilio(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    standin.hold_queued()
    standin.lose_next_response()
    since = datetime.now(UTC)
    send_error(channel)

    found = channel.find_sent(sms(), since)

    assert found is not None
    assert (found.provider_message_id, found.provider_status) == (
        standin.messages[0]["sid"],
        "queued",
    )
    assert "DateSent>" not in standin.exchanges[-1].query
    assert standin.exchanges[-1].query["To"] == PATIENT


def test_the_standin_keeps_date_sent_empty_while_a_message_is_queued(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    client = Client(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
    client.api.base_url = standin.url
    messages = client.api.v2010.account.messages
    standin.hold_queued()
    channel.send(sms())
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    queued = messages.list(to=PATIENT)
    by_date_while_queued = messages.list(to=PATIENT, date_sent_after=today)
    standin.release_queued()
    by_date_once_sent = messages.list(to=PATIENT, date_sent_after=today)

    assert [(m.status, m.date_sent) for m in queued] == [("queued", None)]
    assert by_date_while_queued == []
    assert [m.status for m in by_date_once_sent] == ["sent"]
    assert by_date_once_sent[0].date_sent is not None


def test_find_sent_stops_after_a_bounded_number_of_pages(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    channel.send(sms(body="Something else"))
    standin.endless_pages()

    with pytest.raises(DeliveryError) as caught:
        channel.find_sent(sms(), datetime.now(UTC) - timedelta(hours=1))

    assert caught.value.kind is FailureKind.UNKNOWN_OUTCOME
    assert len([e for e in standin.exchanges if e.method == "GET"]) == RECONCILE_MAX_PAGES


def test_find_sent_pages_through_twilios_list(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    oldest = channel.send(sms(body="Reminder 0"))
    for n in range(1, 150):
        channel.send(sms(body=f"Reminder {n}"))

    found = channel.find_sent(sms(body="Reminder 0"), datetime.now(UTC))

    assert found is not None
    assert found.provider_message_id == oldest.provider_message_id
    pages = [e for e in standin.exchanges if e.method == "GET"]
    assert len(pages) == 2
    assert pages[1].query["PageToken"].startswith("PASM")


def test_find_sent_failure_is_a_delivery_error(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    standin.fail_next(status=503)

    with pytest.raises(DeliveryError) as caught:
        channel.find_sent(sms(), datetime.now(UTC))

    assert (caught.value.code, caught.value.kind) == ("20503", FailureKind.UNKNOWN_OUTCOME)


def test_a_lost_response_leaves_the_outcome_unknown_and_find_sent_recovers_the_message(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    standin.lose_next_response()
    since = datetime.now(UTC)

    error = send_error(channel)
    found = channel.find_sent(sms(), since)

    assert (error.code, error.kind) == ("network", FailureKind.UNKNOWN_OUTCOME)
    assert found is not None
    assert found.provider_message_id == standin.messages[0]["sid"]


# What Twilio's codes mean (sends and delivery reports alike)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (21211, FailureKind.INVALID_NUMBER),
        (21614, FailureKind.INVALID_NUMBER),
        (21610, FailureKind.OPTED_OUT),
        (20003, FailureKind.CHANNEL_CONFIGURATION),
        (21212, FailureKind.CHANNEL_CONFIGURATION),
        (21606, FailureKind.CHANNEL_CONFIGURATION),
        (21608, FailureKind.CHANNEL_CONFIGURATION),
        (21611, FailureKind.RETRY),
        (21408, FailureKind.REJECTED),
        (21612, FailureKind.REJECTED),
    ],
)
def test_each_send_error_is_classified_on_the_delivery_error(
    standin: TwilioStandIn, channel: TwilioSmsChannel, code: int, kind: FailureKind
) -> None:
    status = 401 if code == 20003 else 400
    standin.fail_next(status=status, code=code, message="Refused by the stand-in")

    assert send_error(channel).kind is kind


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("30003", FailureKind.REJECTED),  # unreachable: often transient, the number stays
        ("30007", FailureKind.REJECTED),  # carrier filtering: a sender-registration matter
        ("30005", FailureKind.INVALID_NUMBER),
        ("30006", FailureKind.INVALID_NUMBER),
        ("21610", FailureKind.OPTED_OUT),
        ("21211", FailureKind.INVALID_NUMBER),
        (None, FailureKind.REJECTED),
    ],
)
def test_delivery_report_codes_use_the_same_classifier(code: str | None, kind: FailureKind) -> None:
    assert classify_twilio_code(code) is kind


# Checking the credentials without texting anyone


def test_check_fetches_the_account_and_texts_nobody(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    channel.check()

    [exchange] = standin.exchanges
    assert (exchange.method, exchange.status) == ("GET", 200)
    assert exchange.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}.json"
    assert standin.messages == []


def test_check_with_a_wrong_token_is_a_configuration_error(standin: TwilioStandIn) -> None:
    channel = TwilioSmsChannel(
        TEST_ACCOUNT_SID, "wrong-token", from_number=SENDER, base_url=standin.url
    )

    with pytest.raises(DeliveryError) as caught:
        channel.check()

    assert (caught.value.kind, caught.value.code) == (FailureKind.CHANNEL_CONFIGURATION, "20003")


# Privacy


def test_logs_never_carry_a_full_phone_number(
    caplog: pytest.LogCaptureFixture, standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    caplog.set_level(logging.DEBUG, logger="reminders")
    caplog.set_level(logging.DEBUG, logger="twilio")
    channel.send(sms())
    standin.fail_next(status=400, code=21211)  # Twilio's message quotes the number
    with pytest.raises(DeliveryError) as caught:
        channel.send(sms())
    channel.find_sent(sms(), datetime.now(UTC))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "+1********67" in logged
    assert PATIENT not in logged
    assert PATIENT[1:] not in logged
    assert PATIENT not in str(caught.value)


# The stand-in and Twilio's OpenAPI document


def test_every_exchange_matches_twilios_openapi_document(
    contract: TwilioContract, standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    sent = channel.send(sms())
    TwilioSmsChannel(
        TEST_ACCOUNT_SID,
        TEST_AUTH_TOKEN,
        messaging_service_sid=SERVICE_SID,
        status_callback="https://clinic.example/twilio/status",
        base_url=standin.url,
    ).send(sms(body="Via the messaging service"))
    for n in range(120):
        channel.send(sms(to="+15557654321", body=f"Reminder {n}"))
    channel.find_sent(sms(to="+15557654321", body="Reminder 0"), datetime.now(UTC))
    client = Client(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
    client.api.base_url = standin.url
    client.api.v2010.account.messages(sent.provider_message_id).fetch()
    channel.check()
    standin.hold_queued()
    channel.send(sms(body="Still queued"))
    channel.find_sent(sms(body="Still queued"), datetime.now(UTC))
    standin.fail_next(status=429)
    standin.fault_next(Fault.ACCEPT_THEN_500)
    standin.fail_recipient("+15550001111", code=21610)
    for failing in (sms(), sms(), sms(to="+15550001111")):
        with pytest.raises(DeliveryError):
            channel.send(failing)

    exchanges = standin.exchanges
    assert {e.status for e in exchanges} == {200, 201, 400, 429, 500}
    assert contract.problems(exchanges) == []


def test_the_contract_check_catches_departures_from_the_document(
    contract: TwilioContract,
) -> None:
    path = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    headers = {"Authorization": "Basic eDp5", "Content-Type": "application/x-www-form-urlencoded"}
    bad = Exchange(
        time=datetime.now(UTC),
        client="127.0.0.1:1",
        method="POST",
        path=path,
        query={},
        form={"to": PATIENT, "Body": "hi"},
        headers=headers,
        body=f"to={PATIENT}&Body=hi".encode(),
        status=201,
        response=json.dumps({"sid": "SM123", "status": "posted", "date_sent": "today"}).encode(),
    )

    problems = "\n".join(contract.problems([bad]))

    assert "'To' is a required property" in problems
    assert "form field to is not in the document" in problems
    assert "one of From, MessagingServiceSid is required" in problems
    assert "'posted' is not one of" in problems
    assert "'today' is not a 'date-time-rfc-2822'" in problems
    assert "'SM123' is too short" in problems


def test_the_standin_fetches_one_message_and_404s_an_unknown_one(
    standin: TwilioStandIn, channel: TwilioSmsChannel
) -> None:
    sid = channel.send(sms()).provider_message_id
    client = Client(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
    client.api.base_url = standin.url

    fetched = client.api.v2010.account.messages(sid).fetch()
    with pytest.raises(TwilioRestException) as missing:
        client.api.v2010.account.messages("SM" + "0" * 32).fetch()

    assert (fetched.to, fetched.body, fetched.status) == (PATIENT, sms().body, "sent")
    assert fetched.date_sent is not None
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_the_standin_appends_accepted_messages_to_its_record_file(tmp_path: Path) -> None:
    record = tmp_path / "messages.jsonl"
    with TwilioStandIn(record_path=record) as standin:
        channel = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=SENDER, base_url=standin.url
        )
        channel.send(sms(outbox_id=1, body="First"))
        standin.fail_next(status=500)
        with pytest.raises(DeliveryError):
            channel.send(sms(outbox_id=2, body="Refused"))
        channel.send(sms(outbox_id=3, body="Second"))

    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [line["body"] for line in lines] == ["First", "Second"]


def test_the_standin_runs_as_a_separate_process(tmp_path: Path) -> None:
    record = tmp_path / "messages.jsonl"
    command = [sys.executable, "-m", "reminders.testing.twilio_standin", "--record", str(record)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        channel = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=SENDER, base_url=url, timeout=5
        )
        sid = channel.send(sms()).provider_message_id
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0

    assert url.startswith("http://127.0.0.1:")
    assert [json.loads(line)["sid"] for line in record.read_text().splitlines()] == [sid]
