"""How failures become HTTP answers: one JSON shape, clear 4xx, a generic 500, clean logs.

No answer carries a stack trace, and no log line carries a full phone number or email
address: the unexpected-error log masks both in the traceback text.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminders.errors import (
    EnrollmentError,
    NotFoundError,
    PlanError,
    ReminderError,
    TemplateError,
)
from reminders.inputs import explain
from reminders.redact import redact_text

log = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def error_body(error: str, message: str, fields: list[dict[str, str]] | None = None) -> Any:
    """The JSON every error answer has (`reminders.api.schemas.ErrorOut`)."""
    return {"error": error, "message": message, "fields": fields or []}


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation error's location as the client wrote it: ("body", "phone") -> "phone"."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:] or [parts[0]]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        message = "not valid JSON; send one JSON object"
        body = error_body(
            "validation_error", f"body: {message}", [{"field": "body", "message": message}]
        )
        return JSONResponse(body, status_code=422)
    fields = [
        {
            "field": field_name(error.get("loc", ())),
            "message": explain(
                str(error.get("type", "")), str(error.get("msg", "invalid")), error.get("ctx")
            ),
        }
        for error in errors
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return JSONResponse(error_body("validation_error", message, fields), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    try:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    except ValueError:
        code = "error"
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _reminder_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReminderError)
    if isinstance(exc, EnrollmentError):
        fields = [{"field": p.field, "message": p.message} for p in exc.problems]
        return JSONResponse(error_body("invalid_input", str(exc), fields), status_code=422)
    if isinstance(exc, NotFoundError):
        return JSONResponse(error_body("not_found", str(exc)), status_code=404)
    if isinstance(exc, PlanError | TemplateError):
        return JSONResponse(
            error_body("plan_error", f"the plans on the server do not pass their check: {exc}"),
            status_code=409,
        )
    return JSONResponse(error_body("refused", str(exc)), status_code=400)


def install_error_handlers(api: FastAPI) -> None:
    """Register the handlers that turn known failures into 4xx answers."""
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(ReminderError, _reminder_error)


class CatchAllMiddleware:
    """Turns any unexpected exception into a generic 500, logged once with masked PII.

    Starlette's own last-resort handler re-raises after answering, and the server then logs
    the raw traceback; this catches the exception first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error(
                "unexpected %s on %s %s\n%s",
                type(exc).__name__,
                scope.get("method"),
                redact_text(str(scope.get("path"))),
                redact_text("".join(traceback.format_exception(exc))),
            )
            if not started:
                response = JSONResponse(
                    error_body("internal_error", "internal server error"), status_code=500
                )
                await response(scope, receive, send)
