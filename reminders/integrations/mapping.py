"""The clinic's mapping file: which booked appointments start which plan, and how.

Checked like plan files: every problem comes back as file:line with the field's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reminders.errors import PlanError, PlanProblem
from reminders.inputs import time_zone
from reminders.plans.attributes import AttributeDeclaration, read_attributes
from reminders.plans.loader import line_of, problems_from_validation, read_yaml_with_lines

_BCP47_TWO_LETTER = re.compile(r"[A-Za-z]{2}(?:-[A-Za-z0-9]{2,8})*")


class MappingError(PlanError):
    """The mapping file is invalid; carries every problem with its file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(value: str) -> str:
    """A site's zone, checked as a patient's is: it becomes each booked patient's zone."""
    return time_zone(value)


class Code(_Strict):
    """A procedure or appointment code in one code system (HL7 table 0396 or a FHIR URI)."""

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)


class Consent(_Strict):
    """How SMS consent is decided for patients enrolled from the feed.

    granted: the clinic records consent when it books; refused: email only;
    if_mobile: consent only when the number given is marked as a mobile.
    """

    sms: Literal["granted", "refused", "if_mobile"]


class Site(_Strict):
    """A place procedures happen, with its time zone; matched by location, then facility."""

    id: str = Field(min_length=1)
    timezone: str
    facilities: list[str] = Field(default_factory=list)
    locations: list[str] = Field(default_factory=list)

    _check_zone = field_validator("timezone")(_zone)


class Rule(_Strict):
    """Appointments with one of these codes (at one of these locations, if given) start a plan."""

    plan: str = Field(min_length=1)
    codes: list[Code] = Field(min_length=1)
    locations: list[str] = Field(default_factory=list)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    consent: Consent | None = None


class PatientIdentifier(_Strict):
    """Which of the patient's identifiers (PID-3 / Patient.identifier) is our external id."""

    type: str = Field(min_length=1, description="Identifier type code, e.g. MR (HL7 table 0203)")
    assigning_authority: str | None = None


class Defaults(_Strict):
    """Values for enrollment fields the feed does not carry."""

    language: str = "en"
    preferred_channel: Literal["sms", "email"] = "sms"
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SchedulingMapping(_Strict):
    """The whole mapping file."""

    patient_identifier: PatientIdentifier
    sites: list[Site] = Field(min_length=1)
    consent: Consent
    rules: list[Rule] = Field(min_length=1)
    defaults: Defaults = Defaults()
    languages: dict[str, str] = Field(
        default_factory=dict, description="Language codes of the feed (e.g. SPA) to ours (es)."
    )
    refusals: Literal["AE", "AA"] = Field(
        default="AE",
        description="How a booking we refuse is acknowledged: AE, or AA with the refusal "
        "recorded (for interface engines that stop on AE).",
    )

    @model_validator(mode="after")
    def _unique_sites(self) -> SchedulingMapping:
        seen: set[str] = set()
        for site in self.sites:
            if site.id in seen:
                raise ValueError(f"site id '{site.id}' is used twice")
            seen.add(site.id)
        return self

    def rule_for(self, codes: list[Code], location: str | None) -> Rule | None:
        """The first rule whose code (and location, when it names some) matches."""
        for rule in self.rules:
            if rule.locations and location not in rule.locations:
                continue
            if any(code in rule.codes for code in codes):
                return rule
        return None

    def site_for(self, location: str | None, facility: str | None) -> Site | None:
        """The site of a location, else of the sending facility, else the only site."""
        if location:
            for site in self.sites:
                if location in site.locations:
                    return site
        if facility:
            for site in self.sites:
                if facility in site.facilities:
                    return site
        return self.sites[0] if len(self.sites) == 1 else None

    def language(self, code: str | None) -> str:
        """Our language code for the feed's (ISO 639-1 codes pass through, with a region or
        script too: es-MX, as FHIR's BCP 47 codes, takes the plan's es when it has one)."""
        if not code:
            return self.defaults.language
        if code in self.languages:
            return self.languages[code]
        if _BCP47_TWO_LETTER.fullmatch(code):
            return code.lower()
        return self.defaults.language


def parse_mapping(
    text: str,
    file: str,
    plan_ids: list[str] | None = None,
    declared: Mapping[str, Mapping[str, AttributeDeclaration]] | None = None,
) -> SchedulingMapping:
    """Validate mapping YAML; with `plan_ids`, also check that every rule's plan exists, and
    with `declared` (each plan's attribute declarations) that its attributes fit the plan."""
    try:
        data, lines = read_yaml_with_lines(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise MappingError(
            [
                PlanProblem(
                    file,
                    mark.line + 1 if mark else None,
                    "yaml",
                    f"not valid YAML: {exc.problem or exc}",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise MappingError([PlanProblem(file, None, "yaml", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise MappingError([PlanProblem(file, 1, "file", "expected a mapping of keys")])
    try:
        mapping = SchedulingMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(problems_from_validation(exc, file, lines, SchedulingMapping)) from None
    problems = _unknown_plans(mapping, plan_ids, file, lines) if plan_ids is not None else []
    if declared is not None:
        problems += _attribute_problems(mapping, declared, file, lines)
    if problems:
        raise MappingError(problems)
    return mapping


def _attribute_problems(
    mapping: SchedulingMapping,
    declared: Mapping[str, Mapping[str, AttributeDeclaration]],
    file: str,
    lines: dict[Any, int],
) -> list[PlanProblem]:
    """Default and rule attributes that their rule's plan does not declare, or whose value its
    type does not take (checked once here, not per booking)."""
    problems = []
    for index, rule in enumerate(mapping.rules):
        plan_attributes = declared.get(rule.plan, {})
        given = [("defaults", "attributes"), ("rules", index, "attributes")]
        for where, values in zip(
            given, (mapping.defaults.attributes, rule.attributes), strict=True
        ):
            _, misfits = read_attributes(plan_attributes, values)
            for name, message in misfits.items():
                problems.append(
                    PlanProblem(
                        file,
                        line_of(lines, (*where, name)),
                        ".".join(str(part) for part in (*where, name)).replace(
                            f"rules.{index}", f"rules[{index}]"
                        ),
                        f"plan {rule.plan}: {message}",
                    )
                )
    unique: dict[tuple[object, ...], PlanProblem] = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.field, problem.message), problem)
    return list(unique.values())


def _unknown_plans(
    mapping: SchedulingMapping, plan_ids: list[str], file: str, lines: dict[Any, int]
) -> list[PlanProblem]:
    known = ", ".join(plan_ids) or "none"
    return [
        PlanProblem(
            file,
            line_of(lines, ("rules", index, "plan")),
            f"rules[{index}].plan",
            f"no plan '{rule.plan}' (plans: {known})",
        )
        for index, rule in enumerate(mapping.rules)
        if rule.plan not in plan_ids
    ]


def load_mapping(
    path: Path,
    plan_ids: list[str] | None = None,
    declared: Mapping[str, Mapping[str, AttributeDeclaration]] | None = None,
) -> SchedulingMapping:
    """Read and check the mapping file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            [PlanProblem(str(path), None, "file", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_mapping(text, str(path), plan_ids, declared)
