"""How many SMS segments a text takes: GSM-7 when every character fits, UCS-2 otherwise."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSize:
    """The encoded size of one SMS text."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    @property
    def characters_per_segment(self) -> int:
        """Capacity of one segment of a multi-part message in this encoding."""
        return 153 if self.encoding == "GSM-7" else 67


def sms_size(text: str) -> SmsSize:
    """Measure a text as carriers split it into segments."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        return SmsSize(encoding, 0, 0)
    segments = 1 if units <= single else -(-units // multi)
    return SmsSize(encoding, units, segments)
