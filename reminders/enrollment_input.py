"""One patient's enrollment as every entry point gives it: the CLI, a CSV row, the HTTP API and
the scheduling feeds (HL7 v2, FHIR) all build an `EnrollmentInput` and hand it to the
enrollment service, which checks what needs the plan (its languages and attributes).

Every field refuses what the databases cannot hold (NUL characters, text longer than its column)
and says how to write the value instead, in the words of `reminders.inputs`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from reminders.errors import EnrollmentError, InputProblem
from reminders.inputs import (
    LanguageTag,
    LocalTime,
    PersonName,
    ProcedureDate,
    Text,
    TimeZoneName,
    explain,
    storable,
)
from reminders.store.records import ContactChannel

PreferredChannel = ContactChannel
"""How the patient prefers to be reached."""

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 200
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def normalize_phone(value: str, region: str) -> str:
    """Parse a phone number as staff type it and return it in E.164, or raise ValueError."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number (e.g. +1 202 555 0143)") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"not a valid phone number for region {region}; write it with its country code, "
            "e.g. +1 202 555 0143"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# An address made only of these (most are) is checked by the library once per domain: its
# local part is one the library takes as it is, so only the domain's verdict is left to ask.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")


def email_address(value: str) -> str:
    """An email address in the library's normalized form, or ValueError with its message.

    A plain address (ASCII letters, digits, `_+-.` before the @, a plain ASCII domain, not a
    mailbox name the library lower-cases, within the length limit) takes the verdict the
    library gave its domain, remembered; any other, and any refused domain, goes to the
    library whole, so every message is the library's own.
    """
    local, at, domain = value.partition("@")
    if (
        at
        and _PLAIN_LOCAL.fullmatch(local)
        and _PLAIN_DOMAIN.fullmatch(domain)
        and local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
        and len(value) <= EMAIL_MAX_LENGTH
    ):
        normal = _plain_domain(domain)
        if normal is not None and len(local) + 1 + len(normal) <= EMAIL_MAX_LENGTH:
            return f"{local}@{normal}"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> str | None:
    """The library's normalized form of a plain ASCII domain, or None when it refuses the
    domain or writes it otherwise (an IDNA `xn--` name)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain if checked.domain == checked.ascii_domain else None


def _attribute_name(value: str) -> str:
    if not _ATTRIBUTE_NAME.match(value):
        raise ValueError(
            "an attribute name is a letter then letters, digits or '_' (at most 64), "
            "e.g. takes_blood_thinners"
        )
    return value


ExternalId = Annotated[Text, Field(min_length=1, max_length=128)]
PhoneText = Annotated[Text, Field(max_length=64)]
EmailAddress = Annotated[Text, Field(max_length=320), AfterValidator(email_address)]
PlanId = Annotated[Text, Field(min_length=1, max_length=64)]
AttributeName = Annotated[str, AfterValidator(_attribute_name)]
AttributeText = Annotated[str, Field(max_length=MAX_ATTRIBUTE_TEXT), AfterValidator(storable)]
AttributeNumber = Annotated[float, Field(allow_inf_nan=False)]
AttributeValue = bool | int | AttributeNumber | AttributeText


class EnrollmentInput(BaseModel):
    """One patient's enrollment on one plan, as staff or a feed submit it.

    The phone is kept as given; the enrollment service reads it for the clinic's region and
    stores it in E.164. With a phone, SMS consent is required (yes or no) unless the plan
    states a default; without one, no texts are sent. A language left out is the service's
    default; one the plan lacks falls back to the plan's default with a warning. Without a
    preferred channel, a patient with a phone number is texted, one without is emailed.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: ExternalId
    first_name: PersonName
    phone: PhoneText | None = None
    email: EmailAddress | None = None
    timezone: TimeZoneName
    language: LanguageTag | None = None
    preferred_channel: PreferredChannel | None = None
    sms_consent: bool | None = Field(
        default=None,
        description="Whether the patient agreed to receive texts. Required with a phone number, "
        "unless the plan states a default (defaults.sms_consent).",
    )
    plan: PlanId
    procedure_date: ProcedureDate
    procedure_time: LocalTime | None = None
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, max_length=MAX_ATTRIBUTES
    )

    @model_validator(mode="before")
    @classmethod
    def _blanks_are_missing(cls, data: object) -> object:
        """An empty phone, email, language, channel or time is the same as none given."""
        if isinstance(data, Mapping):
            optional = ("phone", "email", "language", "preferred_channel", "procedure_time")
            return {
                key: None
                if key in optional and isinstance(value, str) and not value.strip()
                else value
                for key, value in data.items()
            }
        return data

    @model_validator(mode="after")
    def _reachable(self) -> EnrollmentInput:
        if self.phone is None and self.email is None:
            raise ValueError("give a phone number or an email address")
        if self.preferred_channel is None:
            self.preferred_channel = "sms" if self.phone is not None else "email"
        if self.preferred_channel == "sms" and self.phone is None:
            raise ValueError("preferred_channel is sms but no phone number was given")
        if self.preferred_channel == "email" and self.email is None:
            raise ValueError("preferred_channel is email but no email address was given")
        return self

    @property
    def channel(self) -> PreferredChannel:
        """The preferred channel, after its default."""
        return self.preferred_channel or ("sms" if self.phone is not None else "email")


class PatientChanges(BaseModel):
    """Fields to change on an enrolled patient; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: PersonName | None = None
    phone: PhoneText | None = None
    email: EmailAddress | None = None
    timezone: TimeZoneName | None = None
    language: LanguageTag | None = None
    preferred_channel: PreferredChannel | None = None
    sms_consent: bool | None = None
    procedure_date: ProcedureDate | None = None
    procedure_time: LocalTime | None = None
    attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None, max_length=MAX_ATTRIBUTES
    )

    def applied_to(self, current: EnrollmentInput) -> EnrollmentInput:
        """The patient's input with these changes made (checked again as a whole)."""
        return read_input({**current.model_dump(), **self.model_dump(exclude_unset=True)})

    def changed_fields(self, current: EnrollmentInput) -> list[str]:
        """The names of the fields these changes give a new value."""
        return sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) != getattr(current, name, None)
        )


def input_problems(error: ValidationError) -> list[InputProblem]:
    """A pydantic error as one problem per field, in the words staff read everywhere."""
    return [
        InputProblem(
            ".".join(str(part) for part in problem["loc"]) or "contact",
            explain(str(problem["type"]), str(problem["msg"]), problem.get("ctx")),
        )
        for problem in error.errors()
    ]


def read_input(fields: Mapping[str, object], row: int | None = None) -> EnrollmentInput:
    """Build the input from named values (CLI options, CSV cells, a feed's message).

    Raises EnrollmentError naming every bad field (and the CSV row when given).
    """
    try:
        return EnrollmentInput.model_validate(fields)
    except ValidationError as exc:
        raise EnrollmentError(input_problems(exc), row) from None
