"""Values PostgreSQL cannot hold, or that would be misread, are 4xx with the field named, on both
databases; `since` takes the CLI's durations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import make_settings
from fastapi.testclient import TestClient

from reminders.api.app import create_app
from reminders.api.keys import create_key
from reminders.app import App

ANA = {
    "external_id": "ana",
    "first_name": "Ana",
    "phone": "+12025550143",
    "timezone": "America/Denver",
    "plan": "knee",
    "procedure_date": "2027-03-09",
    "sms_consent": True,
}


class Api:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"X-API-Key": key}

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str, **params: str) -> Any:
        return self.client.get(path, params=params, headers=self.headers)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    app = App.from_settings(make_settings(tmp_path, database_url=database_url))
    key, _ = create_key(app, "test")
    with TestClient(create_app(app)) as client:
        yield Api(client, key)
    app.close()


def fields(response: Any) -> dict[str, str]:
    return {f["field"]: f["message"] for f in response.json()["fields"]}


def test_a_flag_id_past_32_bits_is_422_not_a_database_error(api: Api) -> None:
    response = api.post("/v1/flags/2147483648/resolve")

    assert response.status_code == 422
    assert fields(response) == {"flag_id": "Input should be less than or equal to 2147483647"}


@pytest.mark.parametrize("offset", ["07:30:00+16:47", "07:30+05:00", "07:30Z"])
def test_a_procedure_time_with_an_offset_is_refused_and_nothing_is_stored(
    api: Api, offset: str
) -> None:
    response = api.post("/v1/enrollments", {**ANA, "procedure_time": offset})

    assert response.status_code == 422
    assert fields(response) == {
        "procedure_time": "expected HH:MM, 24-hour, e.g. 07:30, in the patient's time zone "
        "(no UTC offset)"
    }
    assert api.get("/v1/patients").json() == []


def test_a_nul_character_in_a_name_is_refused(api: Api) -> None:
    response = api.post("/v1/enrollments", {**ANA, "first_name": "A\x00na"})

    assert response.status_code == 422
    assert fields(response) == {"first_name": "must not contain NUL characters"}


def test_a_body_that_is_not_json_is_a_documented_422_naming_the_body(api: Api) -> None:
    response = api.client.post(
        "/v1/enrollments",
        content=b'{"external_id": ',
        headers={**api.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert fields(response) == {"body": "not valid JSON; send one JSON object"}
    schema = api.client.get("/openapi.json", headers=api.headers).json()
    documented = schema["paths"]["/v1/enrollments"]["post"]
    assert {"400", "413", "422"} <= set(documented["responses"])


@pytest.mark.parametrize("since", ["24h", "7d", "2027-03-09", "2027-03-09T08:00+02:00"])
def test_since_takes_durations_like_the_cli_and_iso_instants(api: Api, since: str) -> None:
    assert api.get("/v1/messages", since=since).status_code == 200


@pytest.mark.parametrize("since", ["0.5", "1e9", "yesterday", "99999999999w"])
def test_since_refuses_bare_numbers_and_words(api: Api, since: str) -> None:
    response = api.get("/v1/messages", since=since)

    assert response.status_code == 422
    assert list(fields(response)) == ["since"]
