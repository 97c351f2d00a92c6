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
# "no" that negates the next word rather than answering: "no pain", "no more pain", "no fever".
_NOT_AN_ANSWER_AFTER_NO = frozenset(
    {"pain", "leg", "more", "dolor", "hay", "change", "cambio", "fever", "fiebre", "bleeding"}
    | {"sangrado", "problem", "problems", "problemas", "issues", "swelling", "numbness"}
)
_CAN_WALK = re.compile(
    r"\b(?:can (?:now )?walk|walking (?:better|farther|further|more)|puedo caminar|camino mas)\b"
)
_CANNOT_WALK = re.compile(
    r"\b(?:can t walk|cant walk|cannot walk|can not walk|no puedo caminar|not walking)\b"
)
_NUMBER = re.compile(r"(?<![\d.,:])(\d{1,3})(?![\d:])")
# The score written against the scale ("3/10", "3 out of 10", "3 de 10") or after "pain".
_SCORE_OUT_OF_TEN = re.compile(r"(?<![\d.,:])(\d{1,2})\s*(?:/|\bout of\b|\bof\b|\bde\b)\s*10\b")
_LABELLED_SCORE = re.compile(
    r"\b(?:pain|dolor)(?:\s+(?:is|was|at|of|level|score|about|around|maybe|like|now|today"
    r"|de|es|en|la|leg|pierna))*\s*[:=-]?\s*(\d{1,2})(?![\d:])"
)
_TEN_AS_SCALE = re.compile(r"(?:/|\bout of\b|\bof\b|\bde\b|\bto\b|\ba\b)\s*10\b")
_PAIN_FREE = re.compile(
    r"\b(?:no (?:more )?(?:leg )?pain(?! relief| med\w*| pills?)|pain free|pain is gone"
    r"|sin dolor|no (?:tengo|hay|siento) dolor|ya no (?:me )?duele)\b"
)
_APOSTROPHE = re.compile(r"(?<=\w)['\u2019](?=\w)")

WARNING_WORDS: dict[str, re.Pattern[str]] = {
    "fever": re.compile(r"\bfever(?:s|ish)?\b"),
    "bleeding": re.compile(
        r"\b(?:bleed\w*|bled|bloody|blood(?! (?:thinners?|pressure|sugar|tests?|work|draw)))\b"
    ),
    "weakness": re.compile(r"\bweak(?:ness|er|ened)?\b"),
    "numbness": re.compile(r"\bnumb(?:ness)?\b"),
    "redness": re.compile(r"\bred(?:ness|dish|dened)?\b"),
    "enrojecimiento": re.compile(r"\b(?:enrojec\w*|roj[oa]s?|rojiz[oa]s?)\b"),
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
    """Read leg pain (0 to 10) and walking (yes/no) from a reply.

    "3 Y", "pain 4, yes I can walk further", "no" and "7/10 n" are understood; "ok" is not.
    A pain score that could be either of two numbers ("1 0", "from 8 to 3") is left unread,
    so that the patient is asked again rather than a wrong score recorded.
    """
    words = plain_words(_APOSTROPHE.sub("", text))
    return ReliefAnswer(_leg_pain(text.casefold(), words), _walking(words))


def _leg_pain(text: str, words: str) -> int | None:
    """The score against the scale or after "pain", "no pain" as 0, else the one number."""
    for pattern in (_SCORE_OUT_OF_TEN, _LABELLED_SCORE):
        found = pattern.search(text)
        if found and int(found.group(1)) <= 10:
            return int(found.group(1))
    if _PAIN_FREE.search(words):
        return 0
    bare = _TEN_AS_SCALE.sub(" ", text)
    numbers = [m for m in _NUMBER.finditer(bare) if int(m.group(1)) <= 10]
    if not numbers:
        return None
    if len({m.group(1) for m in numbers}) == 1:
        return int(numbers[0].group(1))
    first, second = numbers[0], numbers[1]
    leads = not bare[: first.start()].strip()
    apart = any(ch.isalpha() for ch in bare[first.end() : second.start()])
    return int(first.group(1)) if leads and apart else None


def _walking(words: str) -> bool | None:
    """Can't-walk phrases first, then the first yes or no, then can-walk phrases."""
    if _CANNOT_WALK.search(words):
        return False
    tokens = words.split()
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in _NO and following in _NOT_AN_ANSWER_AFTER_NO:
            continue
        if token == "y" and (following in _YES or following in _NO):
            continue  # Spanish "and": "5 y no"
        if token in _YES:
            return True
        if token in _NO:
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
