"""Checks exchanges recorded by the Twilio stand-in against Twilio's own OpenAPI document.

Requests are checked against the operation's parameters, security and request body schema, plus
two rules the document states beside its schemas: no form field it does not list, and its
`x-twilio.conditional` groups (CreateMessage: From or MessagingServiceSid; Body, MediaUrl or
ContentSid). Successful responses are checked against the response schema. The document declares
no error responses, so error bodies are checked against the shape the twilio client parses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.schemas.datatypes import FormatValidatorsDict

from reminders.testing.twilio_standin import Exchange

# The server the document names for the 2010-04-01 paths; the stand-in stands in for it.
TWILIO_API_URL = "https://api.twilio.com"

TWILIO_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string", "pattern": "^https://"},
        "status": {"type": "integer"},
    },
}

_PHONE_OR_SENDER = re.compile(
    r"^(?:[a-z]+:)?\+[1-9]\d{1,14}$"  # E.164, optionally with a channel prefix (whatsapp:)
    r"|^\d{3,8}$"  # short code
    r"|^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$"  # alphanumeric sender ID
)


def _is_rfc2822(value: Any) -> bool:
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


# Twilio's own formats, which a plain JSON Schema validator would let through unchecked.
_FORMATS: FormatValidatorsDict = {
    "phone-number": lambda value: bool(_PHONE_OR_SENDER.match(str(value))),
    "date-time-rfc-2822": _is_rfc2822,
}


class TwilioContract:
    """Twilio's 2010-04-01 API document, ready to check recorded exchanges."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        config = Config(spec_validator_cls=None, extra_format_validators=_FORMATS)
        self._api = OpenAPI.from_dict(document, config=config)
        self._paths = [
            (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), item)
            for path, item in document["paths"].items()
        ]

    @classmethod
    def from_path(cls, path: Path | str) -> TwilioContract:
        """Load the document from a JSON file, e.g. twilio_api_v2010.json."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def problems(self, exchanges: Iterable[Exchange]) -> list[str]:
        """Every way the exchanges depart from the document, one line each."""
        found: list[str] = []
        for exchange in exchanges:
            found += self.request_problems(exchange) + self.response_problems(exchange)
        return found

    def request_problems(self, exchange: Exchange) -> list[str]:
        """How the request departs from its operation in the document."""
        request = self._request(exchange)
        found = [_describe(error) for error in self._api.iter_request_errors(request)]
        operation = self._operation(exchange)
        schema = _form_schema(operation)
        if schema is not None:
            listed = schema.get("properties", {})
            found += [
                f"form field {name} is not in the document"
                for name in exchange.form.keys() - listed
            ]
            by_snake_name = {_snake(name): name for name in listed}
            for group in (operation or {}).get("x-twilio", {}).get("conditional", []):
                names = [by_snake_name.get(field, field) for field in group]
                if not any(exchange.form.get(name) for name in names):
                    found.append(f"one of {', '.join(names)} is required")
        return [f"{_title(exchange)}: request: {problem}" for problem in found]

    def response_problems(self, exchange: Exchange) -> list[str]:
        """How the response departs from the document (or from Twilio's error shape)."""
        if exchange.status == 0:
            return []
        if exchange.status >= 400:
            body = exchange.response_json()
            validator = jsonschema.Draft202012Validator(TWILIO_ERROR_SCHEMA)
            found = [error.message for error in validator.iter_errors(body)]
            if isinstance(body, dict) and body.get("status") != exchange.status:
                found.append(f"status {body.get('status')!r} differs from HTTP {exchange.status}")
        else:
            response = MockResponse(exchange.response, status_code=exchange.status)
            errors = self._api.iter_response_errors(self._request(exchange), response)
            found = [_describe(error) for error in errors]
        return [f"{_title(exchange)}: response: {problem}" for problem in found]

    def _request(self, exchange: Exchange) -> MockRequest:
        content_type = exchange.headers.get("Content-Type", "application/x-www-form-urlencoded")
        return MockRequest(
            TWILIO_API_URL,
            exchange.method,
            exchange.path,
            args=exchange.query,
            headers=exchange.headers,
            data=exchange.body,
            content_type=content_type,
        )

    def _operation(self, exchange: Exchange) -> dict[str, Any] | None:
        for pattern, item in self._paths:
            if pattern.match(exchange.path):
                operation: dict[str, Any] | None = item.get(exchange.method.lower())
                return operation
        return None


def _form_schema(operation: dict[str, Any] | None) -> dict[str, Any] | None:
    content = (operation or {}).get("requestBody", {}).get("content", {})
    form: dict[str, Any] | None = content.get("application/x-www-form-urlencoded", {}).get("schema")
    return form


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _title(exchange: Exchange) -> str:
    return f"{exchange.method} {exchange.path} -> {exchange.status}"


def _describe(error: Exception) -> str:
    """The validator's error and the schema errors that caused it, on one line."""
    name = getattr(error, "name", None)
    summary = type(error).__name__ + (f" {name}" if name else "")
    causes = getattr(error.__cause__, "schema_errors", None) or ()
    details = "; ".join(
        f"{'/'.join(map(str, cause.absolute_path)) or 'value'}: {cause.message}" for cause in causes
    )
    details = details or str(error)
    return f"{summary}: {details}" if details else summary
