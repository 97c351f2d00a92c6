"""Enrollment input as staff give it (CLI, CSV, HTTP), validated once, the same way everywhere."""

from __future__ import annotations

from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reminders.errors import EnrollmentError, InputProblem
from reminders.store.records import PatientRecord

CHANNELS = ("sms", "email")


def normalize_phone(value: str, region: str) -> str:
    """Parse a phone number as staff type it and return it in E.164, or raise ValueError."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number (default region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class EnrollmentInput(BaseModel):
    """One patient's enrollment, as any front end submits it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=128)
    first_name: str = Field(min_length=1, max_length=128)
    phone: str | None = None
    email: str | None = None
    timezone: str
    language: str = "en"
    preferred_channel: str = "sms"
    sms_consent: bool = True
    plan: str = Field(min_length=1)
    procedure_date: date
    procedure_time: time | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("phone", "email", "procedure_time", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        region = (info.context or {}).get("region", "US")
        return None if value is None else normalize_phone(value, region)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. America/Chicago)") from None
        return value

    @field_validator("procedure_date")
    @classmethod
    def _plausible_date(cls, value: date) -> date:
        if not 2000 <= value.year <= 2099:
            raise ValueError("expected a procedure date between 2000 and 2099")
        return value

    @field_validator("preferred_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        value = value.lower()
        if value not in CHANNELS:
            raise ValueError(f"expected one of: {', '.join(CHANNELS)}")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return value.lower() or "en"

    @model_validator(mode="after")
    def _reachable(self) -> EnrollmentInput:
        if self.phone is None and self.email is None:
            raise ValueError("give a phone number or an email address")
        if self.preferred_channel == "sms" and self.phone is None:
            raise ValueError("preferred_channel is sms but no phone number was given")
        if self.preferred_channel == "email" and self.email is None:
            raise ValueError("preferred_channel is email but no email address was given")
        return self


def parse_enrollment(
    data: dict[str, Any], region: str, row: int | None = None
) -> tuple[EnrollmentInput, PatientRecord]:
    """Validate raw input; raise EnrollmentError naming every bad field (and the row)."""
    try:
        item = EnrollmentInput.model_validate(data, context={"region": region})
    except ValidationError as exc:
        problems = [
            InputProblem(
                ".".join(str(p) for p in error["loc"]) or "(record)",
                str(error["msg"]).removeprefix("Value error, "),
            )
            for error in exc.errors()
        ]
        raise EnrollmentError(problems, row) from None
    record = PatientRecord(
        external_id=item.external_id,
        first_name=item.first_name,
        timezone=item.timezone,
        language=item.language,
        preferred_channel=item.preferred_channel,
        phone=item.phone,
        email=item.email,
        sms_consent=item.sms_consent,
        attributes=item.attributes,
    )
    return item, record
