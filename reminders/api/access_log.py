"""Keeps patient identifiers out of the server's access log (uvicorn logs every request line).

A path names a patient by external id (`/v1/patients/MRN-1/timeline`, the console's
`/console/patients/MRN-1`, FHIR's `/fhir/Patient/MRN-1/$reminders`) and a query string may
too (`?patient=MRN-1`, the console's search `?q=Ana`); the log keeps the route and the
parameter names, not the values.
"""

from __future__ import annotations

import logging
import re

from reminders.redact import redact_text

ACCESS_LOGGER = "uvicorn.access"
# A patient id may hold a "/" (percent-encoded in the request, decoded in the log): all after
# the prefix is the id, but for the route's own ending (an action, FHIR's "/$reminders"). Any
# path, not only the routes served: an EHR's read of /fhir/Patient/{id} is logged (a 404) too.
_API_PATIENT = re.compile(r"^(/v1/patients/).+?(/(?:timeline|reschedule|cancel|sms-opt-in)/?)?$")
_CONSOLE_PATIENT = re.compile(
    r"^(/console/patients/).+?(/(?:reschedule|contact|cancel|opt-in)(?:/preview)?/?)?$"
)
_FHIR_PATIENT = re.compile(r"^(/fhir/Patient/).+?(/\$[\w-]+/?)?$")
_QUERY_VALUE = re.compile(r"=[^&]*")


def scrub_request_path(full_path: str) -> str:
    """A path fit for logs: "/v1/patients/MRN-1?x=1" -> "/v1/patients/{external_id}?x=***"."""
    path, sep, query = full_path.partition("?")
    for pattern in (_API_PATIENT, _CONSOLE_PATIENT, _FHIR_PATIENT):
        path = pattern.sub(r"\1{external_id}\2", path)
    return redact_text(path) + sep + _QUERY_VALUE.sub("=***", query)


class AccessLogScrubber(logging.Filter):
    """Rewrites the path of uvicorn's access records: (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, full_path, version, status = args
            record.args = (client, method, scrub_request_path(str(full_path)), version, status)
        return True


def install_access_log_scrubber(name: str = ACCESS_LOGGER) -> None:
    """Add the scrubber to the access logger once (logging config keeps a logger's filters)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, AccessLogScrubber) for f in logger.filters):
        logger.addFilter(AccessLogScrubber())
