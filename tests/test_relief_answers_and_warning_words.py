"""Reading relief-check answers (pain score, walking) and warning words in both languages."""

from __future__ import annotations

import pytest

from reminders.replies.relief import ReliefAnswer, parse_relief_answer, warning_words


@pytest.mark.parametrize(
    ("text", "pain", "walking"),
    [
        ("10", 10, None),
        ("0", 0, None),
        ("I'd say 3 out of 10", 3, None),
        ("out of 10, I'd say 3", 3, None),
        ("3 de 10, sí", 3, True),
        ("7 / 10", 7, None),
        ("10/10 pain, N", 10, False),
        ("I walked 2 miles today, pain 3", 3, None),
        ("my pain is 4 and I walked 2 blocks", 4, None),
        ("no pain", 0, None),
        ("No pain at all, Y", 0, True),
        ("sin dolor, sí", 0, True),
        ("No fever, pain 2, Y", 2, True),  # "no fever" is not a "no" to walking
        ("no pain relief, 7", 7, None),
    ],
)
def test_pain_is_read_where_the_answer_says_it(
    text: str, pain: int | None, walking: bool | None
) -> None:
    assert parse_relief_answer(text) == ReliefAnswer(pain, walking)


@pytest.mark.parametrize(
    "text",
    [
        "1 0",  # 1 and 0, or a 10 with a space in it: ask again
        "pain went from 8 to 3",
        "2-3",
    ],
)
def test_an_ambiguous_pain_score_is_not_guessed(text: str) -> None:
    assert parse_relief_answer(text).leg_pain is None


@pytest.mark.parametrize(
    ("text", "walking"),
    [
        ("it's about the same, 5", None),  # "it's" is not "S" for sí
        ("that's 4", None),
        ("dolor 5 y no puedo caminar mas", False),  # Spanish "y" is "and"
        ("5 y no", False),
        ("3 Y", True),
        ("Y 3", True),
        ("S, 2", True),
        ("can't walk any farther, 6", False),
    ],
)
def test_walking_is_not_read_from_contractions_or_conjunctions(
    text: str, walking: bool | None
) -> None:
    assert parse_relief_answer(text).walking_improved is walking


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("no fever", ["fever"]),  # flagged on purpose: staff read the reply, a call is cheap
        ("feeling feverish tonight", ["fever"]),
        ("blood on the bandage", ["bleeding"]),
        ("la herida está roja", ["enrojecimiento"]),
        ("tengo enrojecimiento", ["enrojecimiento"]),
        ("my phone number changed", []),
        ("I reduced my meds", []),
        ("I stopped my blood thinners", []),
        ("see you next weekend", []),
    ],
)
def test_warning_words_cover_both_languages_on_word_boundaries(text: str, words: list[str]) -> None:
    assert warning_words(text) == words
