"""FHIR R4 endpoints: POST/PUT /fhir/Appointment, GET /fhir/Patient/{id}/$reminders.

Answers are FHIR JSON; every error is an OperationOutcome. Every request needs an API key
(`Authorization: Bearer <key>` or `X-API-Key`); changes go through the appointment service,
and so through the same enrollment service as the CLI, CSV import and /v1 API.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reminders.access.presented import presented_key
from reminders.clock import utc_now
from reminders.errors import NotFoundError, ReminderError
from reminders.integrations.fhir.appointment import appointment_event, parse_body
from reminders.integrations.fhir.outcome import FHIR_JSON, FhirError, Issue, operation_outcome
from reminders.integrations.fhir.reminders_bundle import PatientKey, reminders_bundle
from reminders.integrations.service import AppointmentService, FeedOutcome
from reminders.roles import Role
from reminders.store.access_records import ApiKeyRecord

MAX_BODY_BYTES = 1_000_000
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
router = APIRouter(prefix="/fhir", tags=["FHIR R4"])
_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}


def _documented(description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"schema": _RESOURCE}}}


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _documented("Applied, ignored or already received: the Appointment"),
    201: _documented("The patient was enrolled: the Appointment"),
    400: _documented("OperationOutcome: not JSON, not a valid R4 Appointment or Bundle"),
    401: _documented("OperationOutcome: no valid API key"),
    403: _documented("OperationOutcome: the key lacks the staff scope"),
    413: _documented("OperationOutcome: the body is larger than 1 MB"),
    422: _documented("OperationOutcome: refused (e.g. an invalid phone number)"),
    503: _documented("OperationOutcome: the scheduling mapping file is missing or invalid"),
}
WRITE_BODY = {
    "requestBody": {
        "required": True,
        "content": {FHIR_JSON: {"schema": _RESOURCE}, "application/json": {"schema": _RESOURCE}},
    }
}
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _documented("A searchset Bundle"),
    401: _documented("OperationOutcome: no valid API key"),
    403: _documented("OperationOutcome: the key lacks the staff scope"),
    404: _documented("OperationOutcome: no such patient"),
}
CREATED = {FeedOutcome.ENROLLED}
UNPROCESSABLE = {FeedOutcome.REFUSED}


def fhir_response(status: int, body: dict[str, Any], **headers: str) -> JSONResponse:
    """A FHIR JSON answer."""
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def error_response(error: FhirError) -> JSONResponse:
    """The OperationOutcome for a refused request."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    return fhir_response(error.status, operation_outcome(error.issues), **headers)


async def _staff_key(request: Request) -> ApiKeyRecord:
    """The caller's API key; the staff scope is required once keys carry scopes."""
    key = presented_key(request.headers)
    context = request.app.state.context
    record = await run_in_threadpool(context.access.verify_api_key, key) if key else None
    if record is None:
        raise FhirError(
            401,
            [Issue("login", "a valid API key is required: 'Authorization: Bearer <key>'")],
        )
    if not record.scope.allows(Role.STAFF):
        raise FhirError(403, [Issue("forbidden", "this API key needs the staff scope")])
    return record


def _service(request: Request) -> AppointmentService:
    """The appointment service, built on first use (the mapping file is read then)."""
    state = request.app.state
    service: AppointmentService | None = getattr(state, "appointment_service", None)
    if service is None:
        from reminders.integrations.wiring import appointment_service

        try:
            service = appointment_service(state.context.app)
        except ReminderError as exc:
            raise FhirError(
                503, [Issue("exception", f"the scheduling mapping is not usable: {exc}")]
            ) from None
        state.appointment_service = service
    return service


async def _read_json(request: Request) -> tuple[Any, bytes]:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise FhirError(413, [Issue("too-costly", "the body is larger than 1 MB")])
    try:
        return json.loads(body), bytes(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirError(400, [Issue("structure", f"not JSON: {exc}")]) from None
    except RecursionError:
        raise FhirError(
            400, [Issue("structure", "not a FHIR resource: nested too deeply")]
        ) from None


async def _apply(request: Request, appointment_id: str | None) -> JSONResponse:
    try:
        key = await _staff_key(request)
        data, body = await _read_json(request)
        appointment, patient = parse_body(data)
        if appointment_id is not None and appointment.id and appointment.id != appointment_id:
            raise FhirError(
                400,
                [Issue("invalid", f"the body's id {appointment.id!r} is not {appointment_id!r}")],
            )
        resolved_id = appointment_id or appointment.id or str(uuid.uuid4())
        if not FHIR_ID.fullmatch(resolved_id):
            raise FhirError(400, [Issue("invalid", "an id is 1-64 letters, digits, '-' or '.'")])
        event = appointment_event(appointment, patient, resolved_id, body)
        service = _service(request)
        result = await run_in_threadpool(
            service.handle, event, body.decode("utf-8"), f"fhir:{key.name}"
        )
    except FhirError as error:
        return error_response(error)
    if result.outcome in UNPROCESSABLE:
        return error_response(FhirError(422, [Issue("business-rule", result.detail)]))
    request.app.state.context.wake_dispatcher()
    status = 201 if result.outcome in CREATED else 200
    headers = {"Location": f"Appointment/{resolved_id}", "X-Reminders-Outcome": result.outcome}
    if "return=OperationOutcome" in request.headers.get("prefer", ""):
        outcome = operation_outcome([Issue("informational", result.detail, "information")])
        return fhir_response(status, outcome, **headers)
    appointment.id = resolved_id
    return fhir_response(status, appointment.model_dump(mode="json", exclude_none=True), **headers)


@router.post(
    "/Appointment",
    summary="Book, move or cancel from a FHIR R4 Appointment",
    responses=WRITE_RESPONSES,
    openapi_extra=WRITE_BODY,
    response_class=JSONResponse,
)
async def post_appointment(request: Request) -> JSONResponse:
    """Status booked enrolls or reschedules; cancelled, noshow or entered-in-error cancels."""
    return await _apply(request, None)


@router.put(
    "/Appointment/{appointment_id}",
    summary="Update an Appointment (FHIR R4)",
    responses=WRITE_RESPONSES,
    openapi_extra=WRITE_BODY,
    response_class=JSONResponse,
)
async def put_appointment(request: Request, appointment_id: str) -> JSONResponse:
    """As POST, for the appointment with this id."""
    return await _apply(request, appointment_id)


@router.get(
    "/Patient/{external_id:path}/$reminders",
    summary="A patient's reminders as FHIR",
    responses=READ_RESPONSES,
    response_class=JSONResponse,
)
async def patient_reminders(request: Request, external_id: str) -> JSONResponse:
    """Planned messages (CommunicationRequest), sent ones (Communication), relief-check
    answers (Observation) of one patient.

    The id is the patient's identifier as the EHR sent it, which is our external id: the
    PID-3 / Patient.identifier value of the type the mapping file names (e.g. the MRN),
    percent-encoded. The resources refer to the patient by that identifier and type.
    """
    try:
        await _staff_key(request)
        identifier_type = _identifier_type(request)
        storage = request.app.state.context.storage
        if "\x00" in external_id or len(external_id) > 128:
            raise FhirError(404, [Issue("not-found", "no such patient")])
        try:
            messages = await run_in_threadpool(storage.message_views.timeline, external_id)
        except NotFoundError:
            raise FhirError(404, [Issue("not-found", f"no patient '{external_id}'")]) from None
        outcomes = await run_in_threadpool(
            lambda: storage.outcomes.list_outcomes(external_id=external_id)
        )
    except FhirError as error:
        return error_response(error)
    patient = PatientKey(external_id, identifier_type)
    return fhir_response(200, reminders_bundle(patient, messages, outcomes, utc_now()))


def _identifier_type(request: Request) -> str | None:
    """The identifier type the mapping file names; None while it is missing or invalid (a
    patient enrolled another way can still be read back)."""
    try:
        return _service(request).mapping.patient_identifier.type
    except FhirError:
        return None
