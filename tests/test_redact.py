"""One redaction for phone numbers and emails: what logs, errors and staff lists show."""

from __future__ import annotations

import pytest

from reminders.redact import (
    mask_address,
    mask_email,
    mask_phone,
    redact_emails,
    redact_phones,
    redact_text,
)


def test_a_phone_keeps_its_prefix_and_last_two_digits() -> None:
    assert mask_phone("+12025550143") == "+1********43"


def test_an_email_keeps_its_first_letter_and_domain() -> None:
    assert mask_email("ana.lopez@example.org") == "a***@example.org"


@pytest.mark.parametrize(
    ("address", "shown"),
    [("+12025550143", "+1********43"), ("ana@example.org", "a***@example.org"), (None, "")],
)
def test_an_address_is_masked_as_whichever_it_is(address: str | None, shown: str) -> None:
    assert mask_address(address) == shown


def test_a_text_loses_every_phone_and_email_whatever_their_format() -> None:
    text = "call +1 (202) 555-0143 or 2025550188, write ana@example.org"

    redacted = redact_text(text)

    assert "555-0143" not in redacted and "2025550188" not in redacted
    assert "ana@example.org" not in redacted
    assert "a***@example.org" in redacted


def test_an_smtp_reply_keeps_its_status_code_when_emails_are_masked() -> None:
    reply = "550 5.1.1 <ana@example.org>: Recipient address rejected"

    assert redact_emails(reply) == "550 5.1.1 <a***@example.org>: Recipient address rejected"


def test_short_numbers_such_as_error_codes_are_not_phones() -> None:
    assert redact_phones("Twilio error 21211 (HTTP 400)") == "Twilio error 21211 (HTTP 400)"
