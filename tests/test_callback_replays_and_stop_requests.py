"""Replayed callbacks, stop requests, HELP and no-reply flags on the two-way side."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from api_fixtures import (
    ANA,
    PROCEDURE_DATE,
    RELIEF_4_AT,
    WELCOME_AT,
    World,
    twiml_message,
    utc,
)

from reminders.access.actor import Actor
from reminders.replies.keywords import Keyword, requested_keyword


def enrolled_and_welcomed(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()


def opted_out(world: World, external_id: str) -> bool:
    patients = {p["external_id"]: p for p in world.get("/v1/patients")}
    return patients[external_id]["sms_opted_out_at"] is not None


# -- replayed status callbacks --------------------------------------------------------------


def test_a_repeated_carrier_opt_out_callback_does_not_undo_a_later_start(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]
    world.status(sid, "undelivered", "21610")
    world.text(ANA, "START")

    response = world.status(sid, "undelivered", "21610")  # Twilio retried, or a replay

    assert response.status_code == 204
    assert not opted_out(world, "ana")


def test_a_late_carrier_opt_out_callback_does_not_undo_a_later_start(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]
    world.status(sid, "undelivered", "21610")
    world.text(ANA, "START")

    world.status(sid, "sent", "21610")  # older than what is recorded: ignored

    assert not opted_out(world, "ana")


def test_a_repeated_invalid_number_callback_does_not_stop_sms_again(world: World) -> None:
    enrolled_and_welcomed(world)
    sid = world.sms.sids[0]
    world.status(sid, "failed", "21211")
    replies = world.app.replies()
    patient_id = replies.inbound.patients_for_phone(ANA)[0].patient_id
    world.app.storage.consent.clear_phone_invalid(patient_id, utc(WELCOME_AT))  # staff checked it
    staff = world.app.enrollment(Actor.cli("staff"))
    staff.reschedule("ana", date.fromisoformat(PROCEDURE_DATE))  # the schedule is recomputed
    assert world.message("ana", "relief-check-week-4")["status"] == "pending"

    world.status(sid, "failed", "21211")

    assert world.message("ana", "relief-check-week-4")["status"] == "pending"


# -- stop requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP STOP",
        "stop stop stop",
        "STOP!!! STOP!!!",
        "Stop, wrong number",
        "Wrong number. Stop",
        "Wrong number",
        "Quit texting me",
        "I don't want any more texts",
        "I don't want these messages anymore",
        "I want to stop getting these",
        "cancel my subscription",
        "No quiero recibir mas mensajes",
        "ya no quiero mensajes",
        "alto por favor",
        "Número equivocado",
        "St\u00adop",  # a soft hyphen pasted into the word
    ],
)
def test_these_messages_are_stop_requests(body: str) -> None:
    keyword = requested_keyword(body, opted_out=False)

    assert keyword is not None and keyword.kind is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "when can I stop the brace?",
        "Can I stop taking ibuprofen?",
        "my leg won't stop getting worse",
        "the pain doesn't stop when I walk. 4 N",
        "I stopped the blood thinner on Monday",
        "Is it ok to end physical therapy early?",
        "yes",
        "3 Y",
    ],
)
def test_a_sentence_using_stop_in_another_sense_is_not_an_opt_out(body: str) -> None:
    keyword = requested_keyword(body, opted_out=False)

    assert keyword is None or keyword.kind is not Keyword.OPT_OUT


def test_a_stop_request_that_mentions_a_warning_sign_still_reaches_staff(world: World) -> None:
    enrolled_and_welcomed(world)

    world.text(ANA, "Stop texting me, I'm bleeding and going to the ER")

    assert opted_out(world, "ana")
    flags = world.get("/v1/flags", kind="warning_words")
    assert [f["external_id"] for f in flags] == ["ana"]
    assert "bleeding" in flags[0]["detail"]


# -- HELP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "emergency"), [("en", "911"), ("es", "911")])
def test_help_tells_the_patient_to_call_911_in_an_emergency(
    world: World, language: str, emergency: str
) -> None:
    assert world.enroll("ana", ANA, language=language).status_code == 201

    response = world.text(ANA, "HELP")

    text = twiml_message(response.text) or ""
    assert emergency in text and "STOP" in text


# -- no-reply flags -------------------------------------------------------------------------


def test_a_cancelled_enrollment_is_not_flagged_for_no_reply(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(RELIEF_4_AT)
    world.send_due()
    cancel = world.client.post(
        "/v1/patients/ana/cancel", json={"reason": "moved away"}, headers=world.headers
    )
    assert cancel.status_code == 200

    flagged = world.app.replies().flag_missing_replies(utc(RELIEF_4_AT) + timedelta(days=4))

    assert flagged == 0
    assert world.get("/v1/flags") == []


def test_the_store_knows_a_number_that_texted_stop(world: World) -> None:
    enrolled_and_welcomed(world)
    store = world.app.replies().inbound
    world.text("+16175550100", "STOP")  # no patient has this number
    world.text(ANA, "STOP")

    assert store.phone_opted_out(ANA)
    assert store.phone_opted_out("+16175550100")
    assert not store.phone_opted_out("+13125550188")


# -- found here, fixed elsewhere ------------------------------------------------------------


def test_a_new_patient_on_a_phone_that_texted_stop_gets_no_sms(world: World) -> None:
    enrolled_and_welcomed(world)
    world.text(ANA, "STOP")

    assert world.enroll("ana-mother", ANA, procedure_date="2026-03-14").status_code == 201

    assert opted_out(world, "ana-mother")
