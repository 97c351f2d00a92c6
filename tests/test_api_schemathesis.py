"""Property-based check of the staff API against its own OpenAPI schema, on SQLite and
PostgreSQL: no generated input, valid or not, makes it answer 5xx or with a status, content type
or body the schema does not document. In-process (ASGI), derandomized, bounded in examples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from api_fixtures import make_settings
from conftest import postgres_schema_url
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from reminders.access.actor import Actor
from reminders.api.app import create_app
from reminders.api.keys import create_key
from reminders.app import App
from reminders.enrollment_input import EnrollmentInput

OPERATIONS = [
    ("POST", "/v1/enrollments"),
    ("PATCH", "/v1/patients/{external_id}"),
    ("POST", "/v1/patients/{external_id}/reschedule"),
    ("POST", "/v1/patients/{external_id}/cancel"),
    ("POST", "/v1/patients/{external_id}/sms-opt-in"),
    ("GET", "/v1/patients"),
    ("GET", "/v1/patients/{external_id}/timeline"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/replies"),
    ("GET", "/v1/outcomes"),
    ("GET", "/v1/flags"),
    ("POST", "/v1/flags/{flag_id}/resolve"),
    ("GET", "/v1/plans"),
    ("GET", "/v1/plans/{plan_id}/preview"),
    ("GET", "/health"),
    ("POST", "/fhir/Appointment"),
    ("PUT", "/fhir/Appointment/{appointment_id}"),
    ("GET", "/fhir/Patient/{external_id}/$reminders"),
]
# Nothing to make invalid: no negative cases exist.
NO_INPUT = {
    ("GET", "/v1/plans"),
    ("GET", "/health"),
    ("GET", "/fhir/Patient/{external_id}/$reminders"),  # any string is a valid id
}
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (method, path) in NO_INPUT)
]
pytestmark = pytest.mark.slow  # fuzzes every operation on each database

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Target:
    """The schema loaded from the running app, and the header that authenticates."""

    schema: Any
    headers: dict[str, str]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One service (with a patient, so some requests find one) per database for the module."""
    root = tmp_path_factory.mktemp("schemathesis")
    urls = postgres_schema_url() if request.param == "postgresql" else None
    overrides = {"database_url": next(urls)} if urls is not None else {}
    app = App.from_settings(make_settings(root, public_api_docs=True, **overrides))
    key, _ = create_key(app, "schemathesis")
    app.enrollment(Actor.cli("tests")).enroll_one(
        EnrollmentInput.model_validate(
            {
                "external_id": "ana",
                "first_name": "Ana",
                "phone": "+12025550143",
                "timezone": "UTC",
                "plan": "knee",
                "procedure_date": "2026-03-02",
                "sms_consent": True,
            }
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app))
    yield Target(schema, {"Authorization": f"Bearer {key}", "X-API-Key": key})
    app.close()
    if urls is not None:
        next(urls, None)  # drops the schema


def test_every_operation_of_the_schema_is_fuzzed(target: Target) -> None:
    documented = {
        (operation.method.upper(), operation.path)
        for operation in (result.ok() for result in target.schema.get_all_operations())
    }

    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_request_makes_the_api_fail(
    target: Target, method: str, path: str, mode: GenerationMode
) -> None:
    operation = target.schema[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy(mode, headers=target.headers))
    @FUZZ
    def no_server_error(case: Any) -> None:
        response = case.call_and_validate(headers=target.headers, checks=CONFORMANCE)
        statuses.append(response.status_code)

    no_server_error()

    assert statuses and 401 not in statuses  # every request was authenticated and answered
