"""Opting in (START) and out (STOP) is one transaction, on SQLite and PostgreSQL: the inbound
text, the patient's consent, the messages brought back or held, and the audit entry are
committed together or not at all, so Twilio retrying the same text, or the patient texting
START again, then does it all (before: the patient stayed opted in with every text still held,
and the retry was ignored as a duplicate).

Failures are injected by the audit store the service is given (refusing its first write) and,
through the signed /twilio/inbound webhook, by a trigger refusing the audit entry in the
database itself. tests/test_enroll_one_transaction.py proves the service's stop, a staff
opt-in and a text recorded meanwhile (DuplicateInbound); these prove the texts' own retry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from api_fixtures import ANA, CLINIC_NAME, CLINIC_NUMBER, WELCOME_AT, World, twiml_message, utc
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.api.app import create_app
from reminders.consent import SmsConsentService
from reminders.store.access import AccessRepository
from reminders.store.access_records import NewAuditEntry
from reminders.store.database import Database
from reminders.store.inbound_schema import InboundKind
from reminders.store.reply_records import NewInbound

pytestmark = pytest.mark.usefixtures("database_url")  # each test on each database

RESUBSCRIBED = f"You are resubscribed to {CLINIC_NAME} reminders. Reply STOP to unsubscribe."


class AccessThatFails(AccessRepository):
    """The audit log's store, refusing its first write."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.failures = 1

    def append_audit(self, entries: Sequence[NewAuditEntry], now: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT ...", {}, Exception("the database went away"))
        super().append_audit(entries, now)


def consent_over(world: World, access: AccessRepository) -> SmsConsentService:
    storage = dataclasses.replace(world.app.storage, access=access)
    audit = AuditTrail(access, Actor.system("inbound-sms"), lambda: utc(WELCOME_AT))
    return SmsConsentService(storage, world.app.catalog, audit, clock=lambda: utc(WELCOME_AT))


def state(world: World) -> dict[str, object]:
    """What is stored of ana, read on a connection of its own: opted out or not, each
    message's (step, channel, status), consent events, inbound texts and audit actions."""
    with world.app.storage.database.engine.connect() as connection:

        def rows(sql: str) -> list[tuple[object, ...]]:
            return [tuple(row) for row in connection.execute(text(sql))]

        return {
            "opted_out": rows("SELECT sms_opted_out_at IS NOT NULL FROM patients"),
            "messages": rows("SELECT step_id, channel, status FROM messages ORDER BY step_id, id"),
            "events": rows("SELECT kind, keyword FROM opt_out_events ORDER BY id"),
            "inbound": rows("SELECT provider_message_id, kind FROM inbound_messages ORDER BY id"),
            "audit": rows("SELECT action FROM audit_log ORDER BY id"),
        }


def held(world: World) -> list[str]:
    return [m["status"] for m in world.timeline("ana")["messages"] if m["channel"] == "sms"]


def start(sid: str) -> NewInbound:
    return NewInbound(sid, ANA, CLINIC_NUMBER, "START", utc(WELCOME_AT), InboundKind.OPT_IN)


def opted_out_by_text(world: World) -> int:
    """Ana, enrolled and welcomed, texts STOP; her patient id."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    assert world.text(ANA, "STOP").status_code == 200
    assert set(held(world)) == {"sent", "skipped"}
    return world.app.storage.patients.enrollment_details(1).patient.id


# -- through the service --------------------------------------------------------------------


def test_a_failed_opt_in_changes_nothing_and_the_same_start_again_does_it_all(
    world: World,
) -> None:
    patient_id = opted_out_by_text(world)
    before = state(world)
    service = consent_over(world, AccessThatFails(world.app.storage.database))

    with pytest.raises(OperationalError):
        service.resume([patient_id], source="START", inbound=start("SMstart"))

    assert state(world) == before
    resumed = service.resume([patient_id], source="START", inbound=start("SMstart"))
    assert (resumed.opted_in, resumed.restored) == ([patient_id], 3)
    after = state(world)
    assert after["opted_out"] == [(False,)]
    new_entries = after["audit"][len(before["audit"]) :]  # type: ignore[index, arg-type]
    assert new_entries == [("replan",), ("sms.opt_in",)]  # the re-plan's, then the opt-in's
    assert set(held(world)) == {"sent", "pending"}


# -- through the inbound-SMS webhook --------------------------------------------------------


def refuse_audit_action(world: World, action: str) -> str:
    """A trigger refusing audit entries of `action`; the statement that drops it."""
    engine = world.app.storage.database.engine
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                    f"WHEN NEW.action = '{action}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
            return "DROP TRIGGER refuse_audit"
        connection.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.action = '{action}' THEN "
                "RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        )
        return "DROP TRIGGER refuse_audit ON audit_log"


def inbound_sms(world: World, sid: str, body: str) -> tuple[int, str | None]:
    """Ana's text as Twilio posts it (signed), with server errors answered, not raised."""
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": ANA,
        "To": CLINIC_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    client = TestClient(create_app(world.app), raise_server_exceptions=False)
    world.client, kept = client, world.client
    try:
        response = world.post_signed("/twilio/inbound", params)
    finally:
        world.client = kept
    return response.status_code, twiml_message(response.text) if response.is_success else None


def test_a_start_that_fails_half_way_is_retried_whole_by_twilio(world: World) -> None:
    opted_out_by_text(world)
    before = state(world)
    drop = refuse_audit_action(world, "sms.opt_in")

    assert inbound_sms(world, "SMstart", "START")[0] == 500

    assert state(world) == before
    with world.app.storage.database.engine.begin() as connection:
        connection.execute(text(drop))
    assert inbound_sms(world, "SMstart", "START") == (200, RESUBSCRIBED)
    assert state(world)["opted_out"] == [(False,)]
    assert set(held(world)) == {"sent", "pending"}


def test_a_stop_that_fails_half_way_is_retried_whole_by_twilio(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at((utc(WELCOME_AT) - timedelta(hours=1)).isoformat())
    before = state(world)
    drop = refuse_audit_action(world, "sms.opt_out")

    assert inbound_sms(world, "SMstop", "STOP")[0] == 500

    assert state(world) == before
    with world.app.storage.database.engine.begin() as connection:
        connection.execute(text(drop))
    status, reply = inbound_sms(world, "SMstop", "STOP")
    assert status == 200 and reply is not None and reply.startswith("You are unsubscribed")
    after = state(world)
    assert after["opted_out"] == [(True,)]
    assert after["audit"] == [*before["audit"], ("sms.opt_out",)]  # type: ignore[misc]
    assert set(held(world)) == {"skipped"}
