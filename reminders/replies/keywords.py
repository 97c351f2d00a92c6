"""Which inbound texts stop, restart or ask for help.

The carriers' standard keywords are matched on the whole message (any case, spaces and
punctuation around them ignored). Since the FCC's 2024 revocation rule a patient may also
revoke consent in their own words ("please stop texting me"), so clear stop requests written
as sentences count as an opt-out too, as does a stop word standing alone as one sentence of a
longer text ("Stop, wrong number"), and "wrong number" itself: the texts carry health
information. A stop word inside a sentence about something else ("when can I stop the
brace?") is not a request to stop. Matching errs towards honouring a request to stop.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import NamedTuple


class Keyword(StrEnum):
    """What a keyword message asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "STOP ALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPT OUT",
        "OPTOUT",
        # Spanish-speaking patients are told to reply STOP, but may write these.
        "ALTO",
        "PARA",
        "PARAR",
        "BAJA",
        "CANCELAR",
    }
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_KEYWORDS = frozenset({"HELP", "INFO", "AYUDA"})

# Opt-in keywords that are also ordinary answers ("YES" to a relief check): they opt a patient
# back in only when that patient is opted out.
AMBIGUOUS_OPT_IN = frozenset({"YES"})

_POLITE = r"(?:please|pls|plz|ok|okay|just|por favor)"
_STOP_WORD = (
    r"(?:stop|stopall|stop all|quit|end|cancel|unsubscribe|revoke|opt out|optout"
    r"|alto|para|parar|baja|cancelar)"
)
_AFTER = rf"(?:please|pls|plz|now|it|all|them|thanks|thank you|thx|asap|por favor|{_STOP_WORD})"
_POLITE_STOP = re.compile(rf"^(?:{_POLITE}\s+)*{_STOP_WORD}(?:\s+{_AFTER})*$")
# Where one text holds several sentences: "Stop, wrong number" is two.
_SENTENCE_BREAK = re.compile(r"[.,;:!?¡¿\n]+")

_STOP_PHRASES = [
    re.compile(pattern)
    for pattern in (
        r"\bunsubscribe\b",
        r"\bopt\s*out\b",
        r"\brevoke\b",
        r"\b(?:stop|quit)\s+(?:(?:me|the|these|those|all|your|any|this|with|sending|send)\s+)"
        r"{0,3}(?:texting|texts?|messag\w*|sending|contacting|reminders?|sms|notifications?)\b",
        r"\bstop\s+(?:getting|receiving)\s+(?:these|them|those|the|your|any|texts?|messages?)\b",
        r"\b(?:do not|don t|dont)\s+(?:text|message|contact|send)\s+me\b",
        r"\b(?:do not|don t|dont)\s+want\s+(?:to\s+(?:get|receive)\s+)?"
        r"(?:(?:any|more|these|those|your|the|this)\s+){0,3}"
        r"(?:texts?|messages?|reminders?|sms|notifications?)\b",
        r"\bcancel\s+(?:my\s+|the\s+)?subscription\b",
        r"\bwrong\s+(?:number|person)\b",
        r"\bnumero\s+equivocado\b",
        r"\bno\s+(?:quiero|deseo)\s+(?:recibir\s+)?(?:(?:mas|estos|sus|los)\s+){0,2}"
        r"(?:mensajes|textos|recordatorios)\b",
        r"\bno more\s+(?:texts?|messages?|reminders?|sms)\b",
        r"\b(?:remove|take)\s+me\s+(?:off|from)\b",
        r"\bno\s+(?:me\s+)?(?:envien|manden|escriban)\b",
        r"\bdej(?:en|e)\s+de\s+(?:enviar|mandar|escribir)",
        r"\bno\s+mas\s+(?:mensajes|textos|recordatorios)\b",
        r"\bdar(?:me)?\s+de\s+baja\b",
        r"\bcancelar\s+(?:la\s+|mi\s+)?suscripcion\b",
    )
]


def plain_words(text: str) -> str:
    """Lower-case words without accents or punctuation, single-spaced: "¡Sí, STOP!" -> "si stop"."""
    decomposed = unicodedata.normalize("NFKD", text)
    no_accents = "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
    )
    return " ".join(re.sub(r"[\W_]+", " ", no_accents.casefold()).split())


class KeywordMatch(NamedTuple):
    """What a message asks for, and the words it said it in (recorded with the request)."""

    kind: Keyword
    said: str


def classify_keyword(body: str) -> KeywordMatch | None:
    """The keyword a whole message consists of, and the keyword as matched."""
    word = plain_words(body).upper()
    if word in OPT_OUT_KEYWORDS:
        return KeywordMatch(Keyword.OPT_OUT, word)
    if word in OPT_IN_KEYWORDS:
        return KeywordMatch(Keyword.OPT_IN, word)
    if word in HELP_KEYWORDS:
        return KeywordMatch(Keyword.HELP, word)
    return None


def asks_to_stop(body: str) -> bool:
    """True when a message, in its own words, asks us to stop texting."""
    sentences = [plain_words(part) for part in _SENTENCE_BREAK.split(body)]
    if any(_POLITE_STOP.match(sentence) for sentence in sentences):
        return True
    words = plain_words(body)
    return _POLITE_STOP.match(words) is not None or any(
        pattern.search(words) for pattern in _STOP_PHRASES
    )


def requested_keyword(body: str, opted_out: bool) -> KeywordMatch | None:
    """What a message asks for, if it is a keyword or a stop request in the sender's words.

    YES opts back in only a sender who is opted out; from anyone else it is an answer.
    """
    keyword = classify_keyword(body)
    if keyword and keyword.said in AMBIGUOUS_OPT_IN and not opted_out:
        return None
    if keyword is None and asks_to_stop(body):
        return KeywordMatch(Keyword.OPT_OUT, "stop request in own words")
    return keyword
