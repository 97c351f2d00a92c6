"""One error hierarchy: every user-facing failure is a type that carries what explains it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ReminderError(Exception):
    """Base of every error the service reports to a person rather than crashing on."""


@dataclass(frozen=True)
class PlanProblem:
    """One problem found in a plan file or one of its templates."""

    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"


class PlanError(ReminderError):
    """A plan file, or a template it uses, is invalid; carries every problem found."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TemplateError(ReminderError):
    """A template is missing or does not render."""

    def __init__(self, template: str, message: str, line: int | None = None) -> None:
        self.template = template
        self.line = line
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {message}")


@dataclass
class InputProblem:
    """One bad field of enrollment input (a CLI argument, a CSV row or an API body)."""

    field: str
    message: str


class EnrollmentError(ReminderError):
    """Enrollment input is invalid; lists every bad field."""

    def __init__(self, problems: list[InputProblem], row: int | None = None) -> None:
        self.problems = problems
        self.row = row
        prefix = f"line {row}: " if row is not None else ""
        super().__init__(prefix + "; ".join(f"{p.field}: {p.message}" for p in problems))


class SettingsError(ReminderError):
    """The service's settings cannot be used: an environment variable (REMINDERS_...) holds a
    value they cannot take, or one is missing for what was asked (e.g. sending real texts)."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class AfterPassError(ReminderError):
    """What runs after a dispatch pass failed; the pass's sends are committed before it runs.
    `failures`: each step that failed, in words, with its error."""

    def __init__(self, failures: list[tuple[str, Exception]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{step}: {describe_error(exc)}" for step, exc in failures))


class KeptReportsError(ReminderError):
    """Kept delivery reports failed to apply and stay kept for the next pass (the others of
    the pass are applied and committed). `failures`: each report's id, status and error in
    words, never a phone number or an email address; `applied`: how many did apply."""

    def __init__(self, failures: list[tuple[int, str, str]], applied: int) -> None:
        self.failures = failures
        self.applied = applied
        super().__init__(
            f"{len(failures)} kept delivery report(s) failed to apply and stay kept for the "
            "next pass: "
            + "; ".join(f"id {id_} ({status}): {why}" for id_, status, why in failures)
        )

    @property
    def report_ids(self) -> list[int]:
        return [id_ for id_, _, _ in self.failures]


def describe_error(error: Exception) -> str:
    """An error in one line for a person: a ReminderError's own text; any other error's type
    and the first line of its text (a database error's next lines are its SQL)."""
    if isinstance(error, ReminderError):
        return str(error)
    first = str(error).strip().splitlines()[:1]
    return f"{type(error).__name__}: {first[0]}" if first else type(error).__name__


class NotFoundError(ReminderError):
    """A patient, plan or message that was asked for does not exist."""


class FailureKind(StrEnum):
    """What a failed send (or a failed delivery report) means for the message and the patient."""

    RETRY = "retry"  # refused for now (throttled, queue full): trying again is safe
    UNKNOWN_OUTCOME = "unknown outcome"  # the provider may have it: reconcile before any resend
    INVALID_NUMBER = "invalid number"  # the patient's number cannot get SMS
    OPTED_OUT = "opted out"  # the patient unsubscribed at the carrier
    REJECTED = "rejected"  # this message is refused for good; the number stays usable
    CHANNEL_CONFIGURATION = "channel configuration"  # nothing can go until staff fix settings


@dataclass
class DeliveryError(ReminderError):
    """A channel could not deliver; `kind` says what that means for the message."""

    message: str
    code: str | None = None
    kind: FailureKind = FailureKind.REJECTED
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again is safe and may succeed."""
        return self.kind is FailureKind.RETRY

    def __str__(self) -> str:
        code = f" (code {self.code})" if self.code else ""
        return f"{self.message}{code}"
