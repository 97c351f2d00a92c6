"""FHIR OperationOutcome answers, built and checked with fhir.resources' R4B model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Issue:
    """One issue: severity (error, warning, information), FHIR issue type code, text."""

    code: str
    text: str
    severity: str = "error"
    expression: str | None = None


class FhirError(Exception):
    """A request we answer with an OperationOutcome and this HTTP status."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        self.status = status
        self.issues = issues
        super().__init__("; ".join(issue.text for issue in issues))


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource as JSON."""
    resource = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": issue.severity,
                    "code": issue.code,
                    "diagnostics": issue.text,
                    **({"expression": [issue.expression]} if issue.expression else {}),
                }
                for issue in issues
            ],
        }
    )
    return resource.model_dump(mode="json", exclude_none=True)
