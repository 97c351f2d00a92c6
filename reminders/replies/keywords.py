"""Which inbound texts stop, restart or ask for help.

The carriers' standard keywords are matched on the whole message (any case, spaces and
punctuation around them ignored). Since the FCC's 2024 revocation rule a patient may also
revoke consent in their own words ("please stop texting me"), so clear stop requests written
as sentences count as an opt-out too. Matching errs towards honouring a request to stop.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


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

_POLITE = r"(?:please|pls|plz|ok|okay|just)"
_STOP_WORD = r"(?:stop|stopall|stop all|quit|end|cancel|unsubscribe|revoke|opt out|optout)"
_AFTER = r"(?:please|pls|plz|now|it|all|them|thanks|thank you|thx|asap)"
_POLITE_STOP = re.compile(rf"^(?:{_POLITE}\s+)*{_STOP_WORD}(?:\s+{_AFTER})*$")

_STOP_PHRASES = [
    re.compile(pattern)
    for pattern in (
        r"\bunsubscribe\b",
        r"\bopt\s*out\b",
        r"\brevoke\b",
        r"\bstop\s+(?:(?:me|the|these|those|all|your|any|this|with|sending|send)\s+){0,3}"
        r"(?:texting|texts?|messag\w*|sending|contacting|reminders?|sms|notifications?)\b",
        r"\b(?:do not|don t|dont)\s+(?:text|message|contact|send)\s+me\b",
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
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", no_accents.casefold()).split())


def classify_keyword(body: str) -> tuple[Keyword, str] | None:
    """The keyword a whole message consists of, and the keyword as matched."""
    word = plain_words(body).upper()
    if word in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT, word
    if word in OPT_IN_KEYWORDS:
        return Keyword.OPT_IN, word
    if word in HELP_KEYWORDS:
        return Keyword.HELP, word
    return None


def asks_to_stop(body: str) -> bool:
    """True when a message, in its own words, asks us to stop texting."""
    words = plain_words(body)
    if _POLITE_STOP.match(words):
        return True
    return any(pattern.search(words) for pattern in _STOP_PHRASES)


def requested_keyword(body: str, opted_out: bool) -> tuple[Keyword, str] | None:
    """What a message asks for, if it is a keyword or a stop request in the sender's words.

    YES opts back in only a sender who is opted out; from anyone else it is an answer.
    """
    keyword = classify_keyword(body)
    if keyword and keyword[1] in AMBIGUOUS_OPT_IN and not opted_out:
        return None
    if keyword is None and asks_to_stop(body):
        return Keyword.OPT_OUT, "stop request in own words"
    return keyword
