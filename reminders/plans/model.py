"""The plan file's shape, validated by pydantic: unknown keys are errors, times are local."""

from __future__ import annotations

import re
from datetime import time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reminders.plans.attributes import AttributeDeclaration
from reminders.plans.durations import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Scalar = str | int | float | bool
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _parse_local_time(value: object) -> object:
    """Accept "09:00" and "9:00"; anything else is left for pydantic to reject."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    if isinstance(value, time):
        return value
    raise ValueError('expected a local time of day such as "09:00"')


LocalTime = Annotated[time, BeforeValidator(_parse_local_time)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(StrEnum):
    """Where in the journey a step belongs; pre-procedure steps never go out after it starts."""

    PRE_PROCEDURE = "pre-procedure"
    DAY_OF = "day-of"
    RECOVERY = "recovery"
    FOLLOW_UP = "follow-up"


class StepChannel(StrEnum):
    """How a step is sent; `preferred` uses the patient's own choice."""

    SMS = "sms"
    EMAIL = "email"
    PREFERRED = "preferred"


ContactChannel = Literal["sms", "email"]
"""How a patient prefers to be reached, and how a message goes out."""
CONTACT_CHANNELS: tuple[ContactChannel, ...] = get_args(ContactChannel)


def contact_channel(value: str) -> ContactChannel:
    """A channel read from a row, a filter or a step; ValueError for anything else."""
    if value not in CONTACT_CHANNELS:
        raise ValueError(f"not a channel: {value!r} (expected {' or '.join(CONTACT_CHANNELS)})")
    return cast(ContactChannel, value)


class QuietHours(_Strict):
    """A nightly window, in the patient's local time, in which nothing is sent."""

    start: LocalTime
    end: LocalTime

    def contains(self, moment: time) -> bool:
        """True when a local time of day falls inside the window (which may wrap midnight)."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class Offset(_Strict):
    """When a step is due: whole days or weeks from the procedure date at a local time,
    or hours after the procedure's start for same-day steps such as discharge."""

    days: int | None = None
    weeks: int | None = None
    at: LocalTime | None = None
    hours_after_procedure: float | None = Field(default=None, ge=0, le=24)

    @model_validator(mode="after")
    def _one_kind(self) -> Offset:
        given = [
            k for k in ("days", "weeks", "hours_after_procedure") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of days, weeks or hours_after_procedure"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.hours_after_procedure is not None and self.at is not None:
            raise ValueError("'at' goes with days or weeks, not with hours_after_procedure")
        return self

    @property
    def day_offset(self) -> int | None:
        """Days from the procedure date (negative before it), or None for hour offsets."""
        if self.weeks is not None:
            return self.weeks * 7
        return self.days

    def describe(self) -> str:
        """A short human description, for previews and diffs."""
        if self.hours_after_procedure is not None:
            return f"{self.hours_after_procedure:g}h after the procedure"
        days = self.day_offset or 0
        when = (
            "on the procedure day"
            if days == 0
            else (f"{-days}d before" if days < 0 else f"{days}d after")
        )
        return when + (f" at {self.at:%H:%M}" if self.at else "")


class Step(_Strict):
    """One message of the journey."""

    id: str
    phase: Phase
    offset: Offset
    template: str
    channel: StepChannel | None = None
    when: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    max_late: Duration | None = None
    # An SMS the carrier reports undelivered or failed goes again by email (once, to a patient
    # with an address); None takes the plan's default.
    email_if_undelivered: bool | None = None
    description: str | None = None

    @field_validator("id", "template")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' only")
        return value

    @field_validator("offset")
    @classmethod
    def _offset_fits_phase(cls, offset: Offset, info: ValidationInfo) -> Offset:
        phase = info.data.get("phase")
        days = offset.day_offset
        before = offset.hours_after_procedure is None and days is not None and days < 0
        if phase is Phase.PRE_PROCEDURE and not before:
            raise ValueError("a pre-procedure step needs a negative days or weeks offset")
        if phase is not None and phase is not Phase.PRE_PROCEDURE and before:
            raise ValueError(f"a {phase.value} step cannot be due before the procedure date")
        return offset

    def applies_to(self, attributes: dict[str, Any]) -> bool:
        """True when the patient's attributes satisfy this step's `when` condition."""
        for key, expected in self.when.items():
            actual = attributes.get(key)
            if not isinstance(expected, list):
                if not _same(actual, expected):
                    return False
            elif not any(_same(actual, option) for option in expected):
                return False
        return True


def _same(actual: Any, expected: Scalar) -> bool:
    """Compare an attribute (often a string from CSV) with a plan value, leniently for bools."""
    if isinstance(expected, bool):
        if isinstance(actual, str):
            return actual.strip().lower() in (
                ("true", "yes", "1") if expected else ("false", "no", "0", "")
            )
        return bool(actual) is expected if actual is not None else expected is False
    if isinstance(actual, str) and not isinstance(expected, str):
        return actual.strip() == str(expected)
    return bool(actual == expected)


class FrequencyCaps(_Strict):
    """At most this many SMS per patient per local day and per rolling week."""

    per_day: int = Field(default=1, ge=1)
    per_week: int = Field(default=3, ge=1)


class Defaults(_Strict):
    """Values a step takes when it does not set its own."""

    send_time: LocalTime = time(9, 0)
    quiet_hours: QuietHours = QuietHours(start=time(21, 0), end=time(8, 0))
    channel: StepChannel = StepChannel.PREFERRED
    max_late: Duration = timedelta(hours=12)
    assumed_procedure_time: LocalTime = time(8, 0)
    language: str = "en"
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    # Consent to texts for a patient enrolled without an answer; None: staff must give one.
    sms_consent: bool | None = None
    email_if_undelivered: bool = False


class Plan(_Strict):
    """A procedure's whole patient journey."""

    id: str
    name: str
    version: int = Field(ge=1)
    procedure: str
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    templates: str | None = None
    defaults: Defaults = Defaults()
    sms_caps: FrequencyCaps = FrequencyCaps()
    sms_forbidden_words: list[str] = Field(default_factory=list)
    settings: dict[str, Scalar] = Field(default_factory=dict)
    attributes: dict[str, AttributeDeclaration] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' only")
        return value

    @property
    def templates_folder(self) -> str:
        """The folder under templates/ that holds this plan's templates."""
        return self.templates or self.id

    def conditions(self) -> dict[str, list[Scalar]]:
        """Each patient attribute the plan's steps look at, with the values they test for."""
        found: dict[str, list[Scalar]] = {}
        for step in self.steps:
            for key, expected in step.when.items():
                values = found.setdefault(key, [])
                for value in expected if isinstance(expected, list) else [expected]:
                    if value not in values:
                        values.append(value)
        return dict(sorted(found.items()))

    def language_for(self, tag: str | None) -> str | None:
        """The plan's language for a patient's language tag, as the plan spells it: the tag
        itself, else the tag without its last subtags (es-MX -> es, as RFC 4647's lookup),
        in any case; None when the plan has none of them."""
        known = {language.lower(): language for language in self.languages}
        subtags = (tag or "").lower().split("-")
        while subtags and subtags[0]:
            found = known.get("-".join(subtags))
            if found is not None:
                return found
            subtags.pop()
        return None

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError when there is none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def channel_of(self, step: Step) -> StepChannel:
        """The channel a step is sent on, after defaults."""
        return step.channel or self.defaults.channel

    def email_if_undelivered(self, step: Step) -> bool:
        """Whether an undelivered SMS of this step goes again by email (never an email step)."""
        if self.channel_of(step) is StepChannel.EMAIL:
            return False
        chosen = step.email_if_undelivered
        return self.defaults.email_if_undelivered if chosen is None else chosen

    def max_late_of(self, step: Step) -> timedelta:
        """How late a step may still be sent, after defaults."""
        return step.max_late if step.max_late is not None else self.defaults.max_late
