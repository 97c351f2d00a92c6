"""What the service texts back, in the patient's language (English when we don't have theirs)."""

from __future__ import annotations

from string import Template
from typing import Literal

from reminders.templating.context import Clinic

ReplyName = Literal["opt_out", "opt_in", "help", "recorded", "re_ask"]
"""The service's own replies: confirming a stop or a restart, help, an answer recorded, and
asking again for an answer that could not be read."""

_TEXTS: dict[str, dict[ReplyName, str]] = {
    "en": {
        "opt_out": "You are unsubscribed from $clinic reminders. No more messages will be sent. "
        "Reply START to resubscribe.",
        "opt_in": "You are resubscribed to $clinic reminders. Reply STOP to unsubscribe.",
        "help": "$clinic: for help with your reminders, call $phone. In an emergency, call 911. "
        "Reply STOP to unsubscribe.",
        "recorded": "Thank you, we've recorded your answer.",
        "re_ask": "Sorry, we couldn't read your answer. Please reply with your leg pain from 0 "
        "to 10 and Y or N: can you walk farther than before?",
    },
    "es": {
        "opt_out": "Se ha dado de baja de los recordatorios de $clinic. No se enviarán más "
        "mensajes. Responda START para volver a suscribirse.",
        "opt_in": "Se ha vuelto a suscribir a los recordatorios de $clinic. Responda STOP para "
        "darse de baja.",
        "help": "$clinic: para ayuda con sus recordatorios, llame al $phone. En una emergencia, "
        "llame al 911. Responda STOP para darse de baja.",
        "recorded": "Gracias, hemos registrado su respuesta.",
        "re_ask": "Disculpe, no pudimos leer su respuesta. Responda con su dolor de pierna del 0 "
        "al 10 y S o N: ¿puede caminar más que antes?",
    },
}


def reply_text(name: ReplyName, language: str, clinic: Clinic) -> str:
    """One of the service's own replies, in the patient's language."""
    texts = _TEXTS.get(language) or _TEXTS.get(language.split("-")[0], _TEXTS["en"])
    return Template(texts[name]).safe_substitute(clinic=clinic.name, phone=clinic.phone)
