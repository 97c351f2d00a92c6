"""Relief checks: which steps ask for an answer, reading the answer, and what needs staff.

Pure functions: text in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reminders.replies.keywords import plain_words

# Steps whose SMS asks the patient to reply with leg pain (0-10) and Y/N for walking farther.
# The plan model has no `expects_reply` flag yet; until it has, this is the one place that
# says which steps are relief checks: those whose id starts with one of these.
RELIEF_CHECK_STEP_PREFIXES: tuple[str, ...] = ("relief-check",)

_YES = frozenset({"y", "yes", "yeah", "yep", "yup", "si", "s"})
_NO = frozenset({"n", "no", "nope", "nah"})
# "no" that negates the next word rather than answering: "no pain", "no more pain".
_NOT_AN_ANSWER_AFTER_NO = frozenset({"pain", "leg", "more", "dolor", "hay", "change", "cambio"})
_CAN_WALK = re.compile(
    r"\b(?:can (?:now )?walk|walking (?:better|farther|further|more)|puedo caminar|camino mas)\b"
)
_CANNOT_WALK = re.compile(
    r"\b(?:can t walk|cant walk|cannot walk|can not walk|no puedo caminar|not walking)\b"
)
_NUMBER = re.compile(r"(?<![\d.,:])(\d{1,3})(?![\d:])")

WARNING_WORDS: dict[str, re.Pattern[str]] = {
    "fever": re.compile(r"\bfever(?:s|ish)?\b"),
    "bleeding": re.compile(r"\b(?:bleed\w*|bled)\b"),
    "weakness": re.compile(r"\bweak(?:ness|er|ened)?\b"),
    "numbness": re.compile(r"\bnumb(?:ness)?\b"),
    "redness": re.compile(r"\bred(?:ness|dish|dened)?\b"),
    "fiebre": re.compile(r"\bfiebre\b"),
    "sangrado": re.compile(r"\bsangr\w*\b"),
    "debilidad": re.compile(r"\bdebil\w*\b"),
    "entumecimiento": re.compile(r"\b(?:entumec\w*|entumid\w*)\b"),
}


def is_relief_check(step_id: str) -> bool:
    """True when a step's SMS asks the patient for a relief-check answer."""
    return step_id.startswith(RELIEF_CHECK_STEP_PREFIXES)


@dataclass(frozen=True)
class ReliefAnswer:
    """What a relief-check reply says; None where it says nothing."""

    leg_pain: int | None
    walking_improved: bool | None

    @property
    def understood(self) -> bool:
        """True when the reply answers at least one of the two questions."""
        return self.leg_pain is not None or self.walking_improved is not None


def parse_relief_answer(text: str) -> ReliefAnswer:
    """Read leg pain (the first whole number from 0 to 10) and walking (yes/no) from a reply.

    "3 Y", "pain 4, yes I can walk further", "no" and "7/10 n" are understood; "ok" is not.
    """
    words = plain_words(text)
    pain = next(
        (int(m.group(1)) for m in _NUMBER.finditer(text) if int(m.group(1)) <= 10),
        None,
    )
    return ReliefAnswer(pain, _walking(words))


def _walking(words: str) -> bool | None:
    tokens = words.split()
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in _NO and following in _NOT_AN_ANSWER_AFTER_NO:
            continue
        if token in _YES:
            return True
        if token in _NO:
            return False
    if _CANNOT_WALK.search(words):
        return False
    if _CAN_WALK.search(words):
        return True
    return None


def warning_words(text: str) -> list[str]:
    """The warning signs a message mentions (fever, bleeding, ...), in a fixed order."""
    words = plain_words(text)
    return [name for name, pattern in WARNING_WORDS.items() if pattern.search(words)]


def not_improved_reasons(answer: ReliefAnswer, earlier_pain: int | None) -> list[str]:
    """Why an answer suggests the procedure has not helped (empty when it has, or we can't say).

    Pain no lower than at the earlier relief check counts, unless the patient is pain-free.
    """
    reasons = []
    if answer.walking_improved is False:
        reasons.append("walking has not improved")
    pain = answer.leg_pain
    if pain is not None and earlier_pain is not None and pain >= earlier_pain and pain > 0:
        reasons.append(f"leg pain {pain}/10, was {earlier_pain}/10 at the earlier check")
    return reasons
