"""Review finding: the server's access log must not carry patient ids or query values."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import World, running_world

ANA = "+12025550143"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The service on a SQLite file, at the moment patients are enrolled."""
    with running_world(tmp_path) as started:
        yield started


@pytest.mark.parametrize(
    "full_path",
    [
        "/v1/patients/MRN-004521/timeline",
        "/v1/replies?patient=MRN-004521&limit=5",
        f"/v1/patients/{ANA}",
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
    assert '"GET /v1/' in caplog.text and "200" in caplog.text
