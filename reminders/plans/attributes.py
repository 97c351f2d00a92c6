"""Patient attributes a plan declares (`attributes:` in the plan file): their names, their type
(yes/no, a number, or one of a list) and a description for staff.

Enrollment reads every given attribute against these declarations: an unknown name is refused
with the nearest declared one, a value that does not fit with the values allowed, so that a typo
never silently drops the step that depends on it. Values are stored typed (yes/no as a boolean).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

YES = ("yes", "y", "true", "1")
NO = ("no", "n", "false", "0")

AttributeValue = bool | int | float | str


class AttributeType(StrEnum):
    """What values an attribute takes."""

    YES_NO = "yes/no"
    NUMBER = "number"
    ONE_OF = "one of"


class AttributeDeclaration(BaseModel):
    """One attribute a plan's steps may depend on (`when:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: AttributeType
    values: list[str] = Field(default_factory=list, description="For `one of`: the choices.")
    description: str = Field(min_length=1, description="What staff enter, in their words.")

    @model_validator(mode="after")
    def _values_for_one_of(self) -> AttributeDeclaration:
        if self.type is AttributeType.ONE_OF and not self.values:
            raise ValueError("`one of` needs its values, e.g. values: [left, right, both]")
        if self.type is not AttributeType.ONE_OF and self.values:
            raise ValueError(f"values are for `one of` attributes, not {self.type.value}")
        return self

    def allowed(self) -> str:
        """The values this attribute takes, as staff write them."""
        if self.type is AttributeType.YES_NO:
            return "yes or no"
        if self.type is AttributeType.NUMBER:
            return "a number, e.g. 3 or 2.5"
        return "one of " + ", ".join(self.values)

    def read(self, value: object) -> AttributeValue:
        """The typed value, or ValueError naming the values allowed."""
        if self.type is AttributeType.YES_NO:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in YES or text in NO:
                return text in YES
        elif self.type is AttributeType.NUMBER:
            number = _number(value)
            if number is not None:
                return number
        else:
            text = str(value).strip().casefold()
            for choice in self.values:
                if choice.casefold() == text:
                    return choice
        raise ValueError(f"{str(value)!r} is not allowed: expected {self.allowed()}")


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def did_you_mean(name: str, known: list[str]) -> str:
    """An unknown attribute's message: the nearest declared name, and every declared one."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown attribute; {hint}(declared: {', '.join(sorted(known)) or 'none'})"


def read_attributes(
    declared: Mapping[str, AttributeDeclaration], given: Mapping[str, object]
) -> tuple[dict[str, AttributeValue], dict[str, str]]:
    """The given attributes, typed, and a message for each that does not fit the declarations.

    A plan that declares no attributes takes any (as plans did before declarations).
    """
    if not declared:
        return {name: _as_value(value) for name, value in given.items()}, {}
    typed: dict[str, AttributeValue] = {}
    problems: dict[str, str] = {}
    for name, value in given.items():
        declaration = declared.get(name)
        if declaration is None:
            problems[name] = did_you_mean(name, list(declared))
            continue
        try:
            typed[name] = declaration.read(value)
        except ValueError as exc:
            problems[name] = str(exc)
    return typed, problems


def _as_value(value: object) -> AttributeValue:
    return value if isinstance(value, bool | int | float | str) else str(value)
