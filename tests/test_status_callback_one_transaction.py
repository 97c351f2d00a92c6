"""A delivery report is recorded and acted on in one transaction: one that fails half-way
(here, stopping SMS fails after the status and the flag are written) leaves nothing behind,
so Twilio's repeat of the callback acts on it in full, once. Before, the repeat found its
error code recorded and did nothing: the number that had opted out at the carrier stayed
texted. Over HTTP with Twilio's signature, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest
from api_fixtures import ANA, WELCOME_AT, World
from sqlalchemy.exc import OperationalError

from reminders.store.consent import ConsentRepository

pytestmark = pytest.mark.usefixtures("database_url")


def test_a_carrier_opt_out_that_failed_half_way_is_acted_on_in_full_when_repeated(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    (sid,) = world.sms.sids
    stop_sms = ConsentRepository.stop_sms
    calls: list[str] = []

    def fails_the_first_time(self: ConsentRepository, *args: object, **kwargs: object) -> object:
        calls.append(sid)
        if len(calls) == 1:
            raise OperationalError("UPDATE patients", None, sqlite3.OperationalError("locked"))
        return stop_sms(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ConsentRepository, "stop_sms", fails_the_first_time)
    failed = world.status(sid, "undelivered", "21610")
    after_the_failure = world.message("ana", "welcome")

    repeat = world.status(sid, "undelivered", "21610")  # Twilio posts the callback again

    assert failed.status_code == 500
    assert (after_the_failure["status"], after_the_failure["error_code"]) == ("sent", None)
    assert repeat.status_code == 204
    assert len(calls) == 2
    message = world.message("ana", "welcome")
    assert (message["status"], message["error_code"]) == ("undelivered", "21610")
    patient = next(p for p in world.get("/v1/patients") if p["external_id"] == "ana")
    assert patient["sms_opted_out_at"] is not None
    assert len(world.get("/v1/flags", kind="undelivered")) == 1
