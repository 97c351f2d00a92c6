"""Twilio webhooks: signatures, opt-out and opt-in keywords, HELP, replies and status callbacks."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from api_fixtures import (
    ANA,
    BEN,
    CLINIC_NAME,
    CLINIC_PHONE,
    FOLLOW_UP_AT,
    PUBLIC_URL,
    RELIEF_4_AT,
    WELCOME_AT,
    World,
    running_world,
    sign,
    twiml_message,
    utc,
)
from httpx import Response

from reminders.channels.base import DeliveryReceipt, OutgoingMessage
from reminders.replies.keywords import asks_to_stop, classify_keyword
from reminders.store.inbound import InboundRepository
from reminders.testing.memory_channel import InMemoryChannel

UNKNOWN = "+16175550100"
OPT_OUT_TEXT = (
    f"You are unsubscribed from {CLINIC_NAME} reminders. No more messages will be sent. "
    "Reply START to resubscribe."
)


def enrolled_and_welcomed(world: World, external_id: str = "ana", phone: str = ANA) -> None:
    """A patient who got the welcome SMS (so replies have a message to answer)."""
    assert world.enroll(external_id, phone).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()


def inbound(world: World) -> InboundRepository:
    return world.app.storage.inbound


def opted_out(world: World, external_id: str) -> bool:
    patients = {p["external_id"]: p for p in world.get("/v1/patients")}
    return patients[external_id]["sms_opted_out_at"] is not None


def statuses(world: World, external_id: str) -> dict[str, tuple[str, str]]:
    """Step id -> (channel, status) of the latest message of each step."""
    return {
        m["step_id"]: (m["channel"], m["status"]) for m in world.timeline(external_id)["messages"]
    }


# -- signatures -----------------------------------------------------------------------------


def test_an_unsigned_inbound_sms_is_refused_and_changes_nothing(world: World) -> None:
    enrolled_and_welcomed(world)

    response = world.client.post(
        "/twilio/inbound", data={"MessageSid": "SM1", "From": ANA, "To": "+1", "Body": "STOP"}
    )

    assert response.status_code == 403
    assert not opted_out(world, "ana")
    assert world.get("/v1/replies") == []


@pytest.mark.parametrize(
    "how",
    ["wrong token", "other url", "tampered body", "garbage signature"],
)
def test_a_wrongly_signed_inbound_sms_is_refused(world: World, how: str) -> None:
    enrolled_and_welcomed(world)
    params = {"MessageSid": "SM1", "From": ANA, "To": "+15005550006", "Body": "STOP"}
    url = PUBLIC_URL + "/twilio/inbound"
    signature = {
        "wrong token": sign(url, params, token="someone-elses-token"),
        "other url": sign(PUBLIC_URL + "/twilio/status", params),
        "tampered body": sign(url, {**params, "Body": "hello"}),
        "garbage signature": "not-a-signature",
    }[how]

    response = world.client.post(
        "/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403
    assert not opted_out(world, "ana")


def test_an_unsigned_status_callback_is_refused(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]

    response = world.client.post(
        "/twilio/status", data={"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610"}
    )

    assert response.status_code == 403
    assert world.message("ana", "welcome")["provider_status"] == "queued"
    assert not opted_out(world, "ana")


def test_webhooks_are_refused_when_no_auth_token_is_configured(world: World) -> None:
    enrolled_and_welcomed(world)
    world.app.settings.twilio_auth_token = None

    response = world.text(ANA, "STOP")

    assert response.status_code == 403
    assert not opted_out(world, "ana")


def test_the_signature_covers_the_query_string_of_the_configured_url(world: World) -> None:
    enrolled_and_welcomed(world)
    params = {"MessageSid": "SMq", "From": ANA, "To": "+15005550006", "Body": "HELP"}
    url = PUBLIC_URL + "/twilio/inbound?site=main"

    good = world.client.post(
        "/twilio/inbound?site=main", data=params, headers={"X-Twilio-Signature": sign(url, params)}
    )
    bad = world.client.post(
        "/twilio/inbound?site=other", data=params, headers={"X-Twilio-Signature": sign(url, params)}
    )

    assert good.status_code == 200
    assert bad.status_code == 403


def test_the_webhooks_are_not_part_of_the_staff_api_schema(world: World) -> None:
    paths = world.client.get("/openapi.json", headers=world.headers).json()["paths"]

    assert not any(path.startswith("/twilio") for path in paths)


# -- opt-out --------------------------------------------------------------------------------

OPT_OUT_MESSAGES = [
    "STOP",
    "stop",
    "  Stop  ",
    "STOP.",
    "stop!",
    "StopAll",
    "STOP ALL",
    "unsubscribe",
    "Cancel",
    "END",
    "quit",
    "Revoke",
    "OPT OUT",
    "opt-out",
    "please stop texting me",
    "Stop sending me messages",
    "unsubscribe me",
    "Please STOP.",
    "stop please",
    "no more texts please",
    "Don't text me anymore",
    "I revoke my consent to these messages",
    "Por favor dejen de enviarme mensajes",
]


@pytest.mark.parametrize("body", OPT_OUT_MESSAGES)
def test_a_stop_request_opts_the_patient_out_at_once(world: World, body: str) -> None:
    enrolled_and_welcomed(world)

    response = world.text(ANA, body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert twiml_message(response.text) == OPT_OUT_TEXT
    assert opted_out(world, "ana")
    assert statuses(world, "ana")["relief-check-week-4"] == ("sms", "skipped")


@pytest.mark.parametrize(
    "body",
    [
        "the pain doesn't stop when I walk",
        "I can't stop smiling, thank you",
        "When does the recovery end?",
        "can I cancel my appointment on Friday?",
        "stop",  # a control: this one does opt out
    ],
)
def test_only_clear_requests_count_as_stopping(body: str) -> None:
    is_stop = classify_keyword(body) is not None or asks_to_stop(body)

    assert is_stop is (body == "stop")


def test_a_second_stop_gets_no_second_confirmation(world: World) -> None:
    enrolled_and_welcomed(world)

    first = world.text(ANA, "STOP")
    second = world.text(ANA, "stop")

    assert twiml_message(first.text) == OPT_OUT_TEXT
    assert twiml_message(second.text) is None


def test_opting_out_moves_pending_sms_to_email_where_the_step_allows_it(world: World) -> None:
    assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    world.at(WELCOME_AT)
    world.send_due()

    world.text(ANA, "STOP")

    steps = statuses(world, "ana")
    assert steps["welcome"] == ("sms", "sent")
    assert steps["follow-up"] == ("email", "pending")  # the patient's choice: may go by email
    assert steps["relief-check-week-4"] == ("sms", "skipped")  # always SMS: stopped
    world.at(FOLLOW_UP_AT)
    world.send_due()
    assert [m.to for _, m in world.email.sent] == ["ana@example.org"]
    assert len(world.sms.sent) == 1


def test_opting_out_is_recorded_as_an_event_and_an_inbound_message(world: World) -> None:
    enrolled_and_welcomed(world)

    world.text(ANA, "  Stop! ")

    store = inbound(world)
    patient_id = store.patients_for_phone(ANA)[0].patient_id
    events = store.opt_out_events(patient_id)
    assert [(e.kind, e.channel, e.keyword) for e in events] == [("opt_out", "sms", "STOP")]
    replies = world.get("/v1/replies")
    assert [(r["kind"], r["external_id"], r["in_reply_to_step_id"]) for r in replies] == [
        ("opt_out", "ana", "welcome")
    ]


def test_a_stop_from_a_phone_shared_by_two_patients_opts_both_out(world: World) -> None:
    world.enroll("ana", ANA)
    world.enroll("ana-mother", ANA)

    response = world.text(ANA, "STOP")

    assert twiml_message(response.text) == OPT_OUT_TEXT  # one confirmation, not two
    assert opted_out(world, "ana") and opted_out(world, "ana-mother")


def test_a_stop_from_an_unknown_number_is_confirmed_once(world: World) -> None:
    first = world.text(UNKNOWN, "STOP")
    second = world.text(UNKNOWN, "STOP")

    assert twiml_message(first.text) == OPT_OUT_TEXT
    assert twiml_message(second.text) is None


def test_twilio_retrying_the_same_message_is_handled_once(world: World) -> None:
    enrolled_and_welcomed(world)

    first = world.text(ANA, "STOP", sid="SMretry")
    again = world.text(ANA, "STOP", sid="SMretry")

    assert twiml_message(first.text) == OPT_OUT_TEXT
    assert again.status_code == 200 and twiml_message(again.text) is None
    assert len(world.get("/v1/replies")) == 1


# -- opt-in and help ------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["START", "start", " Unstop ", "YES"])
def test_start_opts_the_patient_back_in_and_sms_resume(world: World, body: str) -> None:
    enrolled_and_welcomed(world)
    world.text(ANA, "STOP")

    response = world.text(ANA, body)

    assert twiml_message(response.text) == (
        f"You are resubscribed to {CLINIC_NAME} reminders. Reply STOP to unsubscribe."
    )
    assert not opted_out(world, "ana")
    assert statuses(world, "ana")["relief-check-week-4"] == ("sms", "pending")


def test_yes_from_a_subscribed_patient_is_an_ordinary_reply(world: World) -> None:
    enrolled_and_welcomed(world)

    response = world.text(ANA, "yes")

    assert twiml_message(response.text) is None
    assert [r["kind"] for r in world.get("/v1/replies")] == ["reply"]


@pytest.mark.parametrize("body", ["HELP", "help", "Info", "help?"])
def test_help_answers_with_the_clinic_name_and_phone(world: World, body: str) -> None:
    enrolled_and_welcomed(world)

    response = world.text(ANA, body)

    text = twiml_message(response.text) or ""
    assert CLINIC_NAME in text and CLINIC_PHONE in text
    assert not opted_out(world, "ana")


# -- replies --------------------------------------------------------------------------------


def test_a_plain_reply_is_stored_against_the_patient_and_the_last_sms(world: World) -> None:
    enrolled_and_welcomed(world)

    response = world.text(ANA, "Thanks, see you Monday")

    assert twiml_message(response.text) is None
    (reply,) = world.timeline("ana")["replies"]
    assert reply["body"] == "Thanks, see you Monday"
    assert reply["kind"] == "reply"
    assert reply["in_reply_to_message_id"] == world.message("ana", "welcome")["id"]


def test_replies_are_matched_by_the_sender_when_all_texts_come_from_one_clinic_number(
    world: World,
) -> None:
    enrolled_and_welcomed(world, "ana", ANA)
    world.enroll("ben", BEN)
    world.at(RELIEF_4_AT)
    world.send_due()  # both get the relief check, from the same clinic number

    world.text(BEN, "2 Y")
    world.text(ANA, "Thank you")

    assert [r["body"] for r in world.timeline("ana")["replies"]] == ["Thank you"]
    assert [r["body"] for r in world.timeline("ben")["replies"]] == ["2 Y"]
    (outcome,) = world.get("/v1/outcomes")
    assert outcome["external_id"] == "ben"
    assert outcome["message_id"] == world.message("ben", "relief-check-week-4")["id"]


def test_a_reply_from_a_shared_phone_goes_to_the_patient_texted_last(world: World) -> None:
    world.enroll("ana", ANA)
    world.at(WELCOME_AT)
    world.send_due()  # welcome for ana
    world.at("2026-03-10T09:00:00Z")
    world.enroll("ana-mother", ANA, procedure_date="2026-03-14")
    world.at("2026-03-12T09:00:00Z")
    world.send_due()  # welcome for ana's mother, later than ana's

    world.text(ANA, "Got it")

    assert world.timeline("ana-mother")["replies"][0]["body"] == "Got it"
    assert world.timeline("ana")["replies"] == []


def test_a_text_from_an_unknown_number_is_stored_unmatched(world: World) -> None:
    response = world.text(UNKNOWN, "Who is this?")

    assert twiml_message(response.text) is None
    (reply,) = world.get("/v1/replies", kind="unmatched")
    assert reply["external_id"] is None


def test_a_signed_request_missing_fields_is_a_400_not_a_crash(world: World) -> None:
    response = world.post_signed("/twilio/inbound", {"Body": "hello"})

    assert response.status_code == 400


def test_signed_garbage_never_crashes(world: World) -> None:
    for params in (
        {"MessageSid": "SM" + "x" * 500, "From": ANA, "Body": "STOP"},
        {"MessageSid": "SMg", "From": "\x00\x00", "Body": "\u202e🙂" * 2000},
        {"MessageSid": "", "From": "", "Body": ""},
        {"MessageSid": "SMs", "MessageStatus": "x" * 100},
    ):
        for path in ("/twilio/inbound", "/twilio/status"):
            assert world.post_signed(path, params).status_code < 500


def test_a_non_form_body_is_refused(world: World) -> None:
    body = b"\xff\xfe{not a form"
    response = world.client.post(
        "/twilio/inbound",
        content=body,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/inbound", {})},
    )

    assert response.status_code in (400, 403)


# -- status callbacks -----------------------------------------------------------------------


def test_a_delivered_report_updates_the_message(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]

    response = world.status(sid, "delivered")

    assert response.status_code == 204
    message = world.message("ana", "welcome")
    assert (message["provider_status"], message["error_code"]) == ("delivered", None)


def test_a_report_whose_send_is_committed_while_it_is_looked_up_still_counts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's commit may land between the report's lookup (not there yet) and the check
    for a text in flight (not "sending" any more): the report is recorded, not dropped."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    outbox = world.app.storage.outbox
    in_flight = outbox.sms_in_flight_to
    answers: list[tuple[str, Response]] = []

    class ReportsAtOnce(InMemoryChannel):
        def send(self, message: OutgoingMessage) -> DeliveryReceipt:
            receipt = super().send(message)
            sid = receipt.provider_message_id or ""

            def commit_lands_meanwhile(phone: str) -> bool:
                # The lookup found nothing; the dispatcher's grouped commit lands just now.
                monkeypatch.setattr(outbox, "sms_in_flight_to", in_flight)
                outbox.record_sent(
                    message.outbox_id,
                    utc(WELCOME_AT),
                    provider_message_id=sid,
                    provider_status=receipt.provider_status,
                    recipient=message.to,
                    subject=None,
                    body=message.body,
                )
                return in_flight(phone)

            monkeypatch.setattr(outbox, "sms_in_flight_to", commit_lands_meanwhile)
            answers.append((sid, world.status(sid, "delivered", to=message.to)))
            return receipt

    world.sms = ReportsAtOnce("sms")
    world.send_due()

    [(_sid, answer)] = answers
    assert answer.status_code == 204
    assert world.message("ana", "welcome")["provider_status"] == "delivered"


def test_a_stop_while_the_batch_waits_is_honoured_before_the_text_goes(world: World) -> None:
    """Both welcomes are claimed in one batch; while the first is sent (rate limits, a slow
    provider: seconds), Ben texts STOP. His welcome, claimed before he asked, does not go."""
    assert world.enroll("ana", ANA).status_code == 201
    assert world.enroll("ben", BEN).status_code == 201
    world.at(WELCOME_AT)

    class SlowAndBenStops(InMemoryChannel):
        def send(self, message: OutgoingMessage) -> DeliveryReceipt:
            receipt = super().send(message)
            if message.to == ANA:
                world.clock.tick(timedelta(seconds=5))
                assert world.text(BEN, "STOP").status_code == 200
            return receipt

    world.sms = SlowAndBenStops("sms")
    world.send_due()

    assert [m.to for _, m in world.sms.sent] == [ANA]
    welcome = world.message("ben", "welcome")
    assert (welcome["status"], welcome["status_reason"]) == ("skipped", "patient opted out of SMS")


def test_a_report_for_a_text_we_never_sent_is_acknowledged_and_ignored(world: World) -> None:
    enrolled_and_welcomed(world)

    response = world.status("SM" + "f" * 32, "delivered", to=ANA)

    assert response.status_code == 204
    assert world.message("ana", "welcome")["provider_status"] == "queued"


def test_a_failed_report_records_the_error_code_and_keeps_the_patient_subscribed(
    world: World,
) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]

    world.status(sid, "failed", "30007")

    message = world.message("ana", "welcome")
    assert (message["provider_status"], message["error_code"]) == ("failed", "30007")
    assert not opted_out(world, "ana")
    assert statuses(world, "ana")["relief-check-week-4"] == ("sms", "pending")


def test_a_late_sent_report_does_not_undo_delivered(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]

    world.status(sid, "delivered")
    world.status(sid, "sent")

    assert world.message("ana", "welcome")["provider_status"] == "delivered"


def test_error_21610_means_the_patient_unsubscribed_at_the_carrier(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]

    world.status(sid, "undelivered", "21610")

    assert opted_out(world, "ana")
    assert statuses(world, "ana")["relief-check-week-4"] == ("sms", "skipped")
    store = inbound(world)
    events = store.opt_out_events(store.patients_for_phone(ANA)[0].patient_id)
    assert [(e.kind, e.keyword) for e in events] == [("opt_out", "delivery report 21610")]


@pytest.mark.parametrize("code", ["21211", "21614", "30005", "30006"])
def test_invalid_number_codes_stop_sms_to_that_number(world: World, code: str) -> None:
    assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    sid = world.sms.sids[0]

    world.status(sid, "failed", code)

    steps = statuses(world, "ana")
    assert steps["relief-check-week-4"] == ("sms", "skipped")
    assert steps["follow-up"] == ("email", "pending")
    assert not opted_out(world, "ana")  # a dead number is not a withdrawn consent


@pytest.mark.parametrize("code", ["30003", "30007"])
def test_unreachable_or_filtered_reports_never_mark_the_number_invalid(
    world: World, code: str
) -> None:
    assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    sid = world.sms.sids[0]

    world.status(sid, "undelivered", code)

    assert statuses(world, "ana")["relief-check-week-4"] == ("sms", "pending")
    assert not opted_out(world, "ana")


def test_a_report_for_an_unknown_message_is_accepted_and_ignored(world: World) -> None:
    response = world.status("SMnot-ours", "delivered", to=ANA)

    assert response.status_code == 204
    assert world.app.storage.early_reports.kept() == []  # nothing in flight: nothing kept


def test_webhook_logs_never_hold_a_full_phone_number(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    enrolled_and_welcomed(world)
    world.text(ANA, "hello")
    world.text(ANA, "STOP")
    world.text(UNKNOWN, "hi")
    world.status(world.sms.sids[0], "failed", "21211")
    world.client.post("/twilio/inbound", data={"From": ANA, "Body": "x"})

    assert caplog.records
    for phone in (ANA, UNKNOWN, ANA[1:], UNKNOWN[1:]):
        assert phone not in caplog.text


def test_the_form_is_read_as_twilio_encodes_it(world: World) -> None:
    enrolled_and_welcomed(world)
    params = {"MessageSid": "SMenc", "From": ANA, "To": "+15005550006", "Body": "Sí, 3 & más"}
    headers = {
        "X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/inbound", params),
        "Content-Type": "application/x-www-form-urlencoded",
    }

    response = world.client.post("/twilio/inbound", content=urlencode(params), headers=headers)

    assert response.status_code == 200
    assert world.timeline("ana")["replies"][0]["body"] == "Sí, 3 & más"


def test_the_two_way_flow_on_each_database(database_url: str, tmp_path: Path) -> None:
    with running_world(tmp_path, database_url) as world:
        world.enroll("ana", ANA, email="ana@example.org")
        world.enroll("ben", BEN)
        world.at(RELIEF_4_AT)
        world.send_due()
        ben_sid = world.sms.sid_to(BEN)

        assert twiml_message(world.text(ANA, "ok").text) is not None  # re-ask
        assert twiml_message(world.text(ANA, "4 N, some numbness").text) is not None
        world.status(ben_sid, "delivered")
        world.status(ben_sid, "failed", "21211")
        world.text(ANA, "STOP")
        world.text(ANA, "START")
        flagged = world.app.replies().flag_missing_replies(utc(RELIEF_4_AT) + timedelta(days=4))

        assert world.get("/v1/outcomes")[0]["leg_pain"] == 4
        assert flagged == 0  # ana answered; ben's check never arrived, which is its own flag
        assert {(f["external_id"], f["kind"]) for f in world.get("/v1/flags")} == {
            ("ana", "not_improved"),
            ("ana", "warning_words"),
            ("ben", "undelivered"),
        }
        assert statuses(world, "ben")["relief-check-week-6"] == ("sms", "skipped")
        # Moved to email by the STOP, it stays there after START: never the step twice.
        assert statuses(world, "ana")["follow-up"] == ("email", "pending")
        assert not opted_out(world, "ana")
