"""Relief checks: reading answers, re-asking once, outcomes, and the flags staff act on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_fixtures import (
    ANA,
    RELIEF_4_AT,
    RELIEF_6_AT,
    World,
    twiml_message,
    utc,
)

from reminders.replies.relief import (
    ReliefAnswer,
    is_relief_check,
    not_improved_reasons,
    parse_relief_answer,
    warning_words,
)
from reminders.replies.service import ReplyService

ACK = "Thank you, we've recorded your answer."


def relief_check_sent(world: World, language: str = "en") -> None:
    """Ana is enrolled and has just been sent the week-4 relief check."""
    assert world.enroll("ana", ANA, language=language).status_code == 201
    world.at(RELIEF_4_AT)
    world.send_due()
    world.at("2026-03-30T12:00:00Z")


def flags(world: World, kind: str | None = None) -> list[dict[str, object]]:
    params = {"kind": kind} if kind else {}
    result: list[dict[str, object]] = world.get("/v1/flags", **params)
    return result


# -- reading answers (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pain", "walking"),
    [
        ("3 Y", 3, True),
        ("pain 4, yes I can walk further", 4, True),
        ("no", None, False),
        ("N", None, False),
        ("7/10 n", 7, False),
        ("10", 10, None),
        ("0 no pain, Y", 0, True),
        ("Sí, 2", 2, True),
        ("si 5", 5, True),
        ("dolor 6 N", 6, False),
        ("I walked 20 minutes, pain 3", 3, None),
        ("pain 5 but I can't walk far", 5, False),
        ("I can walk farther now, pain 2", 2, True),
        ("ok", None, None),
        ("Thanks!", None, None),
        ("", None, None),
    ],
)
def test_relief_answers_are_read(text: str, pain: int | None, walking: bool | None) -> None:
    assert parse_relief_answer(text) == ReliefAnswer(pain, walking)


def test_an_answer_is_understood_when_it_answers_either_question() -> None:
    assert parse_relief_answer("4").understood
    assert parse_relief_answer("no").understood
    assert not parse_relief_answer("ok").understood


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I have a fever since yesterday", ["fever"]),
        ("some bleeding at the incision", ["bleeding"]),
        ("my leg feels weak and numb", ["weakness", "numbness"]),
        ("redness around the wound", ["redness"]),
        ("Tengo fiebre y sangrado", ["fiebre", "sangrado"]),
        ("Siento debilidad y entumecimiento", ["debilidad", "entumecimiento"]),
        ("my phone number changed", []),
        ("see you next week", []),
        ("3 Y", []),
    ],
)
def test_warning_words_are_found_in_english_and_spanish(text: str, words: list[str]) -> None:
    assert warning_words(text) == words


def test_relief_check_steps_are_known_by_their_id() -> None:
    assert is_relief_check("relief-check-week-4")
    assert not is_relief_check("welcome")


@pytest.mark.parametrize(
    ("answer", "earlier", "flagged"),
    [
        (ReliefAnswer(4, True), 6, False),
        (ReliefAnswer(6, True), 6, True),
        (ReliefAnswer(7, True), 4, True),
        (ReliefAnswer(2, False), 5, True),
        (ReliefAnswer(0, True), 0, False),
        (ReliefAnswer(5, None), None, False),
    ],
)
def test_not_improved_means_pain_no_lower_or_walking_no_better(
    answer: ReliefAnswer, earlier: int | None, flagged: bool
) -> None:
    assert bool(not_improved_reasons(answer, earlier)) is flagged


# -- outcomes over the webhook --------------------------------------------------------------


def test_an_answer_to_a_relief_check_is_recorded_and_acknowledged(world: World) -> None:
    relief_check_sent(world)

    response = world.text(ANA, "3 Y")

    assert twiml_message(response.text) == ACK
    (outcome,) = world.get("/v1/outcomes")
    assert outcome["external_id"] == "ana"
    assert outcome["step_id"] == "relief-check-week-4"
    assert (outcome["leg_pain"], outcome["walking_improved"]) == (3, True)
    assert outcome["raw"] == "3 Y"
    assert world.get("/v1/replies")[0]["kind"] == "outcome"
    assert flags(world) == []


def test_a_spanish_speaking_patient_is_answered_in_spanish(world: World) -> None:
    relief_check_sent(world, language="es")

    response = world.text(ANA, "Sí, 2")

    assert twiml_message(response.text) == "Gracias, hemos registrado su respuesta."


def test_an_unreadable_answer_gets_one_polite_re_ask(world: World) -> None:
    relief_check_sent(world)

    response = world.text(ANA, "ok")

    text = twiml_message(response.text) or ""
    assert text.startswith("Sorry, we couldn't read your answer.")
    assert "0 to 10" in text
    assert world.get("/v1/outcomes") == []


def test_an_answer_after_the_re_ask_is_recorded(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "ok")

    response = world.text(ANA, "pain 4, yes I can walk further")

    assert twiml_message(response.text) == ACK
    (outcome,) = world.get("/v1/outcomes")
    assert (outcome["leg_pain"], outcome["walking_improved"]) == (4, True)


def test_a_second_unreadable_answer_is_kept_and_flagged_not_re_asked(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "ok")

    response = world.text(ANA, "hmm not sure")

    assert twiml_message(response.text) is None
    assert [r["kind"] for r in world.get("/v1/replies")] == ["reply", "reply"]
    (flag,) = flags(world, "unclear_reply")
    assert flag["external_id"] == "ana"
    assert flag["message_id"] == world.message("ana", "relief-check-week-4")["id"]


def test_replies_after_an_answer_are_plain_replies(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "3 Y")

    response = world.text(ANA, "also I walked 2 miles today!")

    assert twiml_message(response.text) is None
    assert len(world.get("/v1/outcomes")) == 1
    assert world.get("/v1/replies")[0]["kind"] == "reply"


def test_a_reply_to_an_ordinary_message_is_not_read_as_an_answer(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at("2026-02-28T09:00:00Z")
    world.send_due()  # the welcome, not a relief check

    response = world.text(ANA, "3 Y")

    assert twiml_message(response.text) is None
    assert world.get("/v1/outcomes") == []


def test_pain_no_lower_at_week_6_than_at_week_4_is_flagged(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "5 Y")
    world.at(RELIEF_6_AT)
    world.send_due()
    world.at("2026-04-13T11:00:00Z")

    world.text(ANA, "6 Y")

    (flag,) = flags(world, "not_improved")
    assert "6/10" in str(flag["detail"]) and "5/10" in str(flag["detail"])
    assert flag["message_id"] == world.message("ana", "relief-check-week-6")["id"]


def test_pain_lower_at_week_6_is_not_flagged(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "5 Y")
    world.at(RELIEF_6_AT)
    world.send_due()

    world.text(ANA, "2 Y")

    assert flags(world) == []
    assert [o["leg_pain"] for o in world.get("/v1/outcomes")] == [2, 5]


def test_walking_not_improved_is_flagged(world: World) -> None:
    relief_check_sent(world)

    world.text(ANA, "4 N")

    (flag,) = flags(world, "not_improved")
    assert "walking" in str(flag["detail"])


def test_warning_words_in_any_reply_ask_staff_to_call(world: World) -> None:
    relief_check_sent(world)

    response = world.text(ANA, "3 Y but I have a fever and some bleeding")

    assert twiml_message(response.text) == ACK
    (flag,) = flags(world, "warning_words")
    assert "fever" in str(flag["detail"]) and "bleeding" in str(flag["detail"])
    assert "call the patient" in str(flag["detail"])


def test_warning_words_in_spanish_are_flagged_too(world: World) -> None:
    relief_check_sent(world, language="es")

    world.text(ANA, "tengo fiebre")

    assert [f["kind"] for f in flags(world, "warning_words")] == ["warning_words"]


def test_a_flag_can_be_resolved(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "4 N")
    (flag,) = flags(world)

    response = world.client.post(f"/v1/flags/{flag['id']}/resolve", headers=world.headers)

    assert response.status_code == 200
    assert response.json()["resolved_at"] is not None
    assert flags(world) == []
    assert len(world.get("/v1/flags", include_resolved=True)) == 1


def test_resolving_an_unknown_flag_is_404(world: World) -> None:
    response = world.client.post("/v1/flags/999/resolve", headers=world.headers)

    assert response.status_code == 404


# -- no reply -------------------------------------------------------------------------------


def replies(world: World) -> ReplyService:
    return world.app.replies()


def test_a_relief_check_without_reply_for_72_hours_is_flagged_once(world: World) -> None:
    relief_check_sent(world)
    service = replies(world)

    early = service.flag_missing_replies(utc(RELIEF_4_AT) + timedelta(hours=71))
    due = service.flag_missing_replies(utc(RELIEF_4_AT) + timedelta(hours=73))
    again = service.flag_missing_replies(utc(RELIEF_4_AT) + timedelta(hours=90))

    assert (early, due, again) == (0, 1, 0)
    (flag,) = flags(world, "no_reply")
    assert flag["message_id"] == world.message("ana", "relief-check-week-4")["id"]
    assert "72 h" in str(flag["detail"])


def test_an_answered_relief_check_is_not_flagged_for_no_reply(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "ok")

    flagged = replies(world).flag_missing_replies(utc(RELIEF_4_AT) + timedelta(days=5))

    assert flagged == 0


def test_a_patient_who_opted_out_is_not_flagged_for_no_reply(world: World) -> None:
    relief_check_sent(world)
    world.text(ANA, "STOP")

    flagged = replies(world).flag_missing_replies(utc(RELIEF_4_AT) + timedelta(days=5))

    assert flagged == 0


def test_the_no_reply_window_is_configurable(world: World) -> None:
    relief_check_sent(world)

    flagged = replies(world).flag_missing_replies(
        utc(RELIEF_4_AT) + timedelta(hours=25), after=timedelta(hours=24)
    )

    assert flagged == 1
    assert "24 h" in str(flags(world, "no_reply")[0]["detail"])
