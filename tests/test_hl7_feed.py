"""SIU messages from the clinic's scheduling system enroll, move and cancel patients.

Each test sends real SIU messages over a TCP MLLP connection (python-hl7's MLLPClient to our
listener) and, the same messages, as files an interface engine drops.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from feed_fixtures import (
    MAPPING,
    MOBILE,
    Feed,
    FileSender,
    MllpSender,
    ack_code,
    ack_text,
    build_feed,
    open_feed,
    open_sender,
    parse_ack,
    segment,
    siu,
)
from hl7.client import MLLPClient
from pytest import MonkeyPatch
from typer.testing import CliRunner

from reminders.cli.main import app
from reminders.enrollment_input import PatientChanges

Sender = MllpSender | FileSender


@pytest.fixture
def feed(tmp_path: Path, sqlite_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, sqlite_url) as opened:
        yield opened


@pytest.fixture(params=["mllp", "file"])
def send(request: pytest.FixtureRequest, feed: Feed) -> Iterator[Sender]:
    with open_sender(request.param, feed) as sender:
        yield sender


def pending(feed: Feed, external_id: str) -> list[str]:
    return [m.step_id for m in feed.timeline(external_id) if m.status == "pending"]


def test_a_booking_enrolls_the_patient_with_the_start_converted_to_the_site_zone(
    feed: Feed, send: Sender
) -> None:
    ack = send(siu("S12", start="20270310143000+0000"))

    assert ack_code(ack) == "AA"
    assert str(ack.segment("MSA")(2)) == "MSG0001"
    enrollment = feed.enrollment("MRN1")
    assert enrollment["timezone"] == "America/Chicago"
    # 14:30 UTC on 10 March 2027 is 08:30 in Chicago: still CST (UTC-6), since daylight
    # saving time begins on 14 March in 2027.
    assert enrollment["procedure_date"] == date(2027, 3, 10)
    assert enrollment["procedure_time"] == time(8, 30)
    assert enrollment["phone"] == "+13125550123"
    assert enrollment["first_name"] == "Ana"
    assert enrollment["sms_consent"] is True
    assert pending(feed, "MRN1") == ["prepare", "ride", "discharge", "week-one"]


def test_a_start_without_an_offset_is_the_sites_local_time(feed: Feed, send: Sender) -> None:
    send(siu("S12", start="202703170730", facility="LAKESIDE"))

    enrollment = feed.enrollment("MRN1")
    assert enrollment["timezone"] == "America/Denver"
    assert (enrollment["procedure_date"], enrollment["procedure_time"]) == (
        date(2027, 3, 17),
        time(7, 30),
    )


def test_a_reschedule_moves_the_procedure_and_its_pending_messages(
    feed: Feed, send: Sender
) -> None:
    send(siu("S12", control_id="M1", sent="20270301090000"))
    before = {m.step_id: m.due_at for m in feed.timeline("MRN1")}

    ack = send(siu("S13", control_id="M2", sent="20270302090000", start="20270324143000+0000"))

    assert ack_code(ack) == "AA"
    assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 24)
    after = {m.step_id: m.due_at for m in feed.timeline("MRN1") if m.status == "pending"}
    assert after["prepare"] - before["prepare"] == timedelta(days=14) - timedelta(hours=1)


def test_a_cancellation_cancels_the_enrollment_with_the_reason(feed: Feed, send: Sender) -> None:
    send(siu("S12", control_id="M1"))

    ack = send(siu("S15", control_id="M2", sent="20270302090000", reason="PATREQ^Patient request"))

    assert ack_code(ack) == "AA"
    enrollment = feed.enrollment("MRN1")
    assert enrollment["status"] == "cancelled"
    assert enrollment["status_reason"] == "Patient request"
    assert pending(feed, "MRN1") == []


def test_a_deleted_appointment_cancels_too(feed: Feed, send: Sender) -> None:
    send(siu("S12", control_id="M1"))

    send(siu("S17", control_id="M2", sent="20270302090000"))

    assert feed.enrollment("MRN1")["status"] == "cancelled"


def test_a_no_show_cancels_what_follows_the_procedure_and_flags_it(
    feed: Feed, send: Sender
) -> None:
    send(siu("S12", control_id="M1"))

    ack = send(siu("S26", control_id="M2", sent="20270310200000"))

    assert ack_code(ack) == "AA"
    statuses = {m.step_id: m.status for m in feed.timeline("MRN1")}
    assert statuses == {
        "prepare": "pending",
        "ride": "pending",
        "discharge": "cancelled",
        "week-one": "cancelled",
    }
    flags = feed.app_flags("MRN1")
    assert [flag.kind for flag in flags] == ["no_show"]


def test_a_replayed_message_is_answered_as_before_and_changes_nothing(
    feed: Feed, send: Sender
) -> None:
    first = send(siu("S12", control_id="M1"))
    send(siu("S13", control_id="M2", sent="20270302090000", start="20270324143000+0000"))

    again = send(siu("S12", control_id="M1"))

    assert ack_code(again) == ack_code(first) == "AA"
    assert "already received" in ack_text(again)
    assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 24)
    assert feed.log.outcome_counts() == {"enrolled": 1, "moved": 1}


def test_a_reschedule_that_arrives_before_its_booking_wins(feed: Feed, send: Sender) -> None:
    moved = siu("S13", control_id="M2", sent="20270302090000", start="20270324143000+0000")
    booked = siu("S12", control_id="M1", sent="20270301090000", start="20270310143000+0000")

    assert ack_code(send(moved)) == "AA"
    late = send(booked)

    assert ack_code(late) == "AA"
    assert "older than the last message" in ack_text(late)
    assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 24)


def test_a_cancellation_that_arrives_before_its_booking_keeps_it_cancelled(
    feed: Feed, send: Sender
) -> None:
    send(siu("S15", control_id="M2", sent="20270302090000"))
    send(siu("S12", control_id="M1", sent="20270301090000"))

    assert feed.log.outcome_counts() == {"ignored": 1, "stale": 1}
    assert feed.timeline("MRN1") == []


def test_an_appointment_that_maps_to_no_plan_is_acknowledged_and_counted(
    feed: Feed, send: Sender
) -> None:
    ack = send(siu("S12", code="99213^Office visit^C4"))

    assert ack_code(ack) == "AA"
    assert "no plan for codes C4|99213" in ack_text(ack)
    assert feed.log.outcome_counts() == {"ignored": 1}
    assert feed.timeline("MRN1") == []


def test_an_invalid_phone_is_refused_with_the_reason(feed: Feed, send: Sender) -> None:
    ack = send(siu("S12", phone="^PRN^CP^^1^555^0"))

    assert ack_code(ack) == "AE"
    assert ack_text(ack).startswith("PID-13: not a valid phone number")
    err = ack.segment("ERR")
    assert str(err(4)) == "E"
    assert feed.timeline("MRN1") == []
    (logged,) = feed.log.list_messages()
    assert (logged.outcome, logged.ack_code) == ("refused", "AE")
    assert logged.raw is not None and "PID|" in logged.raw


def test_a_facility_with_no_site_is_refused_for_its_unknown_time_zone(
    feed: Feed, send: Sender
) -> None:
    ack = send(siu("S12", facility="ELSEWHERE"))

    assert ack_code(ack) == "AE"
    assert "no time zone" in ack_text(ack)


def test_garbage_is_rejected(feed: Feed, send: Sender) -> None:
    ack = send("this is not an HL7 message\r")

    assert ack_code(ack) == "AR"
    assert feed.log.outcome_counts() == {"rejected": 1}


def test_a_message_that_is_not_siu_is_rejected_naming_the_field(feed: Feed, send: Sender) -> None:
    message = siu("S12").replace("SIU^S12^SIU_S12", "ADT^A01^ADT_A01")

    ack = send(message)

    assert ack_code(ack) == "AR"
    assert str(ack.segment("MSA")(2)) == "MSG0001"
    assert "MSH-9" in ack_text(ack)


def test_a_booking_for_someone_enrolled_under_another_id_is_flagged_not_enrolled(
    feed: Feed, send: Sender
) -> None:
    send(siu("S12", control_id="M1", appointment="APT1", mrn="MRN1"))

    ack = send(siu("S12", control_id="M2", appointment="APT2", mrn="MRN9"))

    assert ack_code(ack) == "AE"
    assert "possible duplicate" in ack_text(ack)
    assert feed.timeline("MRN9") == []
    assert [flag.kind for flag in feed.app_flags("MRN1")] == ["duplicate_person"]


def test_the_mapping_may_answer_refusals_with_aa_and_still_record_them(
    tmp_path: Path, sqlite_url: str
) -> None:
    feed = build_feed(tmp_path, sqlite_url, MAPPING.replace("refusals: AE", "refusals: AA"))
    send = MllpSender(feed)
    try:
        ack = send(siu("S12", phone="^PRN^CP^^1^555^0"))
    finally:
        send.close()
        feed.app.close()

    assert ack_code(ack) == "AA"
    assert "PID-13" in ack_text(ack)
    (logged,) = feed.log.list_messages(refused_only=True)
    assert (logged.outcome, logged.ack_code) == ("refused", "AA")


def test_sms_consent_can_require_a_number_marked_mobile(tmp_path: Path, sqlite_url: str) -> None:
    feed = build_feed(
        tmp_path,
        sqlite_url,
        MAPPING.replace("consent: {sms: granted}", "consent: {sms: if_mobile}"),
    )
    try:
        feed.handler.handle(siu("S12", control_id="M1", mrn="A1", phone="^PRN^PH^^1^312^5550100"))
        feed.handler.handle(siu("S12", control_id="M2", mrn="A2", phone=MOBILE, first_name="Bo"))

        assert feed.enrollment("A1")["sms_consent"] is False
        assert feed.enrollment("A2")["sms_consent"] is True
    finally:
        feed.app.close()


def test_a_mobile_number_is_preferred_and_the_language_is_mapped(feed: Feed) -> None:
    message = siu("S12", phone="^PRN^PH^^1^312^5550100~^ORN^CP^^1^312^5550199").replace(
        "ENG^English^ISO6392", "SPA^Spanish^ISO6392"
    )

    feed.handler.handle(message)

    enrollment = feed.enrollment("MRN1")
    assert (enrollment["phone"], enrollment["language"]) == ("+13125550199", "es")


def test_raw_messages_are_forgotten_after_the_retention_time(feed: Feed) -> None:
    feed.handler.handle(siu("S12", control_id="M1"))
    feed.clock.advance(timedelta(days=31))

    feed.handler.handle(siu("S14", control_id="M2", sent="20270402090000"))

    newest, oldest = feed.log.list_messages()
    assert oldest.raw is None and oldest.outcome == "enrolled"
    assert newest.raw is not None


def test_hl7_import_and_log_from_the_command_line(feed: Feed, monkeypatch: MonkeyPatch) -> None:
    settings = feed.app.settings
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "PLANS_DIR": str(settings.plans_dir),
        "TEMPLATES_DIR": str(settings.templates_dir),
        "SCHEDULING_MAPPING": str(settings.scheduling_mapping),
    }.items():
        monkeypatch.setenv(f"REMINDERS_{name}", value)
    drop = feed.root / "drop.hl7"
    framed = [
        b"\x0b" + m.encode() + b"\x1c\r"
        for m in (
            siu("S12", control_id="M1"),
            siu("S12", control_id="M2", phone="^PRN^CP^^1^555^0"),
        )
    ]
    drop.write_bytes(b"".join(framed))
    runner = CliRunner()

    imported = runner.invoke(app, ["hl7", "import", str(drop)])
    logged = runner.invoke(app, ["hl7", "log", "--refused", "--json"])

    assert imported.exit_code == 1
    assert "2 message(s): enrolled 1, refused 1" in imported.stdout
    assert "message 2 (M2): AE refused: PID-13: not a valid phone number" in imported.stderr
    data = json.loads(logged.stdout)
    assert data["counts"] == {"enrolled": 1, "refused": 1}
    assert [m["message_id"] for m in data["messages"]] == ["M2"]
    assert data["messages"][0]["actor"] == "hl7:RIVERSIDE"
    shown = runner.invoke(app, ["hl7", "log", "--show", str(data["messages"][0]["id"])])
    assert shown.exit_code == 0
    assert shown.stdout.startswith("refused (AE): PID-13: not a valid phone number")
    assert "\nPID|1||MRN1^^^RIVERSIDE^MR" in shown.stdout


@pytest.mark.slow
def test_serve_listens_for_mllp_when_a_port_is_set(feed: Feed) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = feed.app.settings
    env = {
        **os.environ,
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
        "REMINDERS_SCHEDULING_MAPPING": str(settings.scheduling_mapping),
        "REMINDERS_OUTBOX_FILE": str(feed.root / "outbox.log"),
        "REMINDERS_HL7_MLLP_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.cli", "serve", "--no-api"],
        env=env,
        cwd=feed.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        banner = []
        while not banner or "hl7:" not in banner[-1]:
            line = process.stdout.readline()
            if not line:
                break
            banner.append(line)
        with MLLPClient("127.0.0.1", port) as client:
            ack = parse_ack(client.send_message(siu("S12")))
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)

    assert f"hl7:      MLLP on 127.0.0.1:{port}" in "".join(banner), "".join(banner) + rest
    assert ack_code(ack) == "AA"
    assert process.returncode == 0, rest
    assert feed.enrollment("MRN1")["procedure_date"] == date(2027, 3, 10)


def test_a_reschedule_keeps_what_staff_added_to_the_patient(feed: Feed) -> None:
    feed.handler.handle(siu("S12", control_id="M1"))
    current = feed.service.enrollment.current_input(feed.enrollment("MRN1")["id"])  # type: ignore[arg-type]
    changed = PatientChanges(attributes={"takes_blood_thinners": True}, email="ana@example.org")
    feed.service.enrollment.enroll_one(changed.applied_to(current))

    feed.handler.handle(siu("S13", control_id="M2", sent="20270302090000"))

    enrollment = feed.enrollment("MRN1")
    assert enrollment["attributes"] == {"takes_blood_thinners": True}
    assert enrollment["email"] == "ana@example.org"
    assert "medicines" in pending(feed, "MRN1")


def test_the_start_is_read_from_tq1_7_first_and_from_sch_11_for_older_senders(
    feed: Feed, send: Sender
) -> None:
    # TQ1-7 and AIS-4 disagree: TQ1-7 (v2.5+) is the appointment's start.
    with_tq1 = siu("S12", control_id="M1", start="20270310143000+0000").replace(
        "\rRGS|1", "\rTQ1|1||||||20270317153000+0000\rRGS|1"
    )
    # A v2.3 sender without TQ1 or AIS: the start in SCH-11.4, the procedure in SCH-7.
    sch = {1: "APT2^EPIC", 2: "APT2^EPIC", 7: "0275T^MILD procedure^C4", 11: "^^^20270324093000"}
    v23 = "\r".join(
        segment("SCH", {**sch, 25: "Booked"}) if line.startswith("SCH|") else line
        for line in siu("S12", control_id="M2", appointment="APT2", mrn="MRN2", first_name="Bo")
        .replace(MOBILE, "^PRN^CP^^1^312^5550177")
        .replace("|2.5.1", "|2.3")
        .split("\r")
        if not line.startswith("AIS|")
    )

    assert ack_code(send(with_tq1)) == "AA"
    assert ack_code(send(v23)) == "AA"

    first, older = feed.enrollment("MRN1"), feed.enrollment("MRN2")
    # 15:30 UTC on 17 March 2027 is 10:30 in Chicago (CDT since 14 March).
    assert (first["procedure_date"], first["procedure_time"]) == (date(2027, 3, 17), time(10, 30))
    assert (older["procedure_date"], older["procedure_time"]) == (date(2027, 3, 24), time(9, 30))


def test_the_location_names_the_site_whose_zone_an_instant_is_converted_to(
    feed: Feed, send: Sender
) -> None:
    # Sent by RIVERSIDE (Chicago) for the Lakeside operating room: the mapping puts the
    # location LAKE-OR1 at the Denver site, and the location wins over the sender.
    ack = send(siu("S12", start="20270310083000-0500", location="LAKE-OR1"))

    assert ack_code(ack) == "AA"
    enrollment = feed.enrollment("MRN1")
    assert enrollment["timezone"] == "America/Denver"
    # 08:30 at UTC-5 is 13:30 UTC, 06:30 in Denver (MST, UTC-7, until 14 March).
    assert (enrollment["procedure_date"], enrollment["procedure_time"]) == (
        date(2027, 3, 10),
        time(6, 30),
    )
