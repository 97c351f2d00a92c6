"""Redaction: the one place that decides how phone numbers and email addresses look in logs,
error messages and staff lists (patient data never appears in full)."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def mask_phone(phone: str) -> str:
    """Mask a phone number: keep the country prefix and the last two digits."""
    if len(phone) <= 4:
        return "***"
    return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]


def mask_email(email: str) -> str:
    """Mask an email address: first letter of the local part and the domain."""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def mask_address(address: str | None) -> str:
    """Mask a phone number or an email address, whichever it is ("" for none)."""
    if not address:
        return ""
    return mask_email(address) if "@" in address else mask_phone(address)


def redact_text(text: str) -> str:
    """Mask every email address and phone-like number in a free text (an error, a log line)."""
    return redact_phones(redact_emails(text))


def redact_emails(text: str) -> str:
    """Mask every email address in a free text (an SMTP server's reply quotes them)."""
    return _EMAIL.sub(lambda m: mask_email(m.group()), text)


def redact_phones(text: str) -> str:
    """Mask every phone-like number (7 or more digits, separators allowed) in a free text."""
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[^\d+]", "", m.group())), text)
