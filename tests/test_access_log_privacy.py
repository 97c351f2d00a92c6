"""The server's access log carries no patient id, phone number or query value."""

from __future__ import annotations

import logging

import pytest
from api_fixtures import ANA, World


@pytest.mark.parametrize(
    "full_path",
    [
        "/v1/patients/MRN-004521/timeline",
        "/v1/patients/RIVERSIDE/MRN-004521/timeline",  # an id with a "/", decoded
        "/v1/patients/RIVERSIDE/MRN-004521",
        "/console/patients/RIVERSIDE/MRN-004521",
        "/console/patients/RIVERSIDE/MRN-004521/cancel/preview",
        "/v1/replies?patient=MRN-004521&limit=5",
        f"/v1/patients/{ANA}",
        "/fhir/Patient/MRN-004521/$reminders",
        "/fhir/Patient/RIVERSIDE/MRN-004521/$reminders",
        "/fhir/Patient/MRN-004521",  # a read an EHR may try (answered 404)
        "/fhir/Patient/MRN-004521/$everything",
        "/fhir/Patient/MRN-004521/$reminders/",
    ],
)
def test_the_access_log_holds_no_patient_id_or_phone(
    world: World, caplog: pytest.LogCaptureFixture, full_path: str
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")

    # What uvicorn logs for every request: (client, method, path with query, version, status)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", full_path, "1.1", 200
    )

    assert "MRN-004521" not in caplog.text
    assert ANA not in caplog.text and ANA[1:] not in caplog.text
    assert any(f'"GET /{root}/' in caplog.text for root in ("v1", "console", "fhir/Patient"))
    assert "200" in caplog.text
