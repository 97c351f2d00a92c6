"""Staff users, sign-in lockout, sessions, API key scopes and the append-only audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import World, make_settings
from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from reminders.access.actor import Actor
from reminders.access.errors import BadUserName, SignInRefused, WeakPassword
from reminders.access.service import AccessService
from reminders.api.keys import create_key
from reminders.app import App
from reminders.cli.main import app as cli
from reminders.enrollment_input import read_input
from reminders.roles import Role
from reminders.settings import Settings
from reminders.store.access import DuplicateUser
from reminders.store.access_records import NewAuditEntry

ADMIN = Actor.cli("setup")
PASSWORD = "correct horse battery"
ANA_PHONE = "+12025550143"
ANA: dict[str, Any] = {
    "external_id": "ana",
    "first_name": "Ana",
    "phone": ANA_PHONE,
    "timezone": "UTC",
    "plan": "knee",
    "procedure_date": date(2026, 3, 2),
    "sms_consent": True,
}


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[App]:
    """The composition root on each database."""
    opened = App.from_settings(make_settings(tmp_path, database_url=database_url))
    yield opened
    opened.close()


@pytest.fixture
def access(app: App) -> AccessService:
    """The access service with one staff user, 'nina'."""
    service = app.access()
    service.create_user("nina", Role.STAFF, PASSWORD, ADMIN)
    return service


def audit_actions(app: App) -> list[tuple[str, str, str | None]]:
    """(actor, action, external id) of every audit entry, oldest first."""
    entries = app.storage.access.audit_entries(limit=1000)
    return [(e.actor, e.action, e.external_id) for e in reversed(entries)]


# -- users and passwords ----------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash(app: App, access: AccessService) -> None:
    stored = app.storage.access.user("nina")

    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


def test_a_short_password_and_a_bad_name_are_refused(access: AccessService) -> None:
    with pytest.raises(WeakPassword, match="at least 12 characters"):
        access.create_user("omar", Role.VIEWER, "short", ADMIN)
    with pytest.raises(BadUserName):
        access.create_user("omar smith", Role.VIEWER, PASSWORD, ADMIN)
    with pytest.raises(DuplicateUser):
        access.create_user("nina", Role.VIEWER, PASSWORD, ADMIN)


def test_signing_in_with_the_right_password_gives_a_session(access: AccessService) -> None:
    signed_in = access.sign_in("nina", PASSWORD)
    identity = access.resume(signed_in.token)

    assert identity is not None
    assert (identity.user, identity.role) == ("nina", Role.STAFF)
    assert identity.csrf_token == signed_in.csrf_token


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(access: AccessService) -> None:
    with pytest.raises(SignInRefused) as wrong:
        access.sign_in("nina", "not the password")
    with pytest.raises(SignInRefused) as unknown:
        access.sign_in("nobody", "not the password")

    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"


def test_five_failed_sign_ins_lock_the_user_for_fifteen_minutes(access: AccessService) -> None:
    with freeze_time("2026-03-02T09:00:00Z") as clock:
        for _ in range(4):
            with pytest.raises(SignInRefused, match="wrong user name"):
                access.sign_in("nina", "guess")
        with pytest.raises(SignInRefused, match="locked for 15 more minute"):
            access.sign_in("nina", "guess")
        with pytest.raises(SignInRefused, match="locked"):
            access.sign_in("nina", PASSWORD)  # even the right password, while locked

        clock.tick(timedelta(minutes=15, seconds=1))
        assert access.sign_in("nina", PASSWORD).user == "nina"


def test_a_password_reset_lifts_a_lockout(access: AccessService) -> None:
    for _ in range(5):
        with pytest.raises(SignInRefused):
            access.sign_in("nina", "guess")
    access.reset_password("nina", "another long password", ADMIN)

    assert access.sign_in("nina", "another long password").user == "nina"


def test_a_disabled_user_cannot_sign_in_and_their_sessions_end(access: AccessService) -> None:
    session = access.sign_in("nina", PASSWORD)
    access.disable_user("nina", ADMIN)

    assert access.resume(session.token) is None
    with pytest.raises(SignInRefused):
        access.sign_in("nina", PASSWORD)


# -- sessions ---------------------------------------------------------------------------------


def test_a_session_ends_after_thirty_minutes_without_a_request(access: AccessService) -> None:
    with freeze_time("2026-03-02T09:00:00Z") as clock:
        token = access.sign_in("nina", PASSWORD).token
        clock.tick(timedelta(minutes=29))
        assert access.resume(token) is not None  # in use: the timeout starts again
        clock.tick(timedelta(minutes=29))
        assert access.resume(token) is not None
        clock.tick(timedelta(minutes=30, seconds=1))
        assert access.resume(token) is None
        clock.tick(timedelta(seconds=1))
        assert access.resume(token) is None  # ended, not revived


def test_signing_out_ends_the_session(access: AccessService) -> None:
    token = access.sign_in("nina", PASSWORD).token
    identity = access.resume(token)
    assert identity is not None

    access.sign_out(identity)

    assert access.resume(token) is None
    assert access.resume("made-up-token") is None


# -- audit log --------------------------------------------------------------------------------


def test_the_audit_log_names_who_changed_users(app: App, access: AccessService) -> None:
    access.reset_password("nina", "another long password", Actor.user("ada"))
    access.disable_user("nina", Actor.cli("root"))

    assert audit_actions(app) == [
        ("cli:setup", "user.create", None),
        ("ada", "user.reset_password", None),
        ("cli:root", "user.disable", None),
    ]


def test_the_audit_log_refuses_updates_and_deletes(app: App, access: AccessService) -> None:
    engine = app.storage.database.engine
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))

    assert audit_actions(app) == [("cli:setup", "user.create", None)]


def test_a_large_batch_of_changes_is_recorded_whole_and_in_order(app: App) -> None:
    """An import's audit entries go in at once (COPY on PostgreSQL): every one, in order,
    with the instant, the truncated actor and action, and details as given."""
    at = datetime(2027, 3, 14, 7, 30, 15, 123456, tzinfo=UTC)
    entries = [
        NewAuditEntry("x" * 200, "enroll" * 20, f"P-{i}" if i % 3 else None, f"line {i}\tü")
        for i in range(2500)
    ]

    app.storage.access.append_audit(entries, at)

    stored = list(reversed(app.storage.access.audit_entries(limit=3000, actor="x" * 160)))
    assert [(e.external_id, e.detail) for e in stored] == [
        (e.external_id, e.detail) for e in entries
    ]
    assert {(e.at, e.actor, e.action) for e in stored} == {(at, "x" * 160, ("enroll" * 20)[:64])}


def test_enrolling_rescheduling_and_cancelling_are_audited_with_the_actor(app: App) -> None:
    service = app.enrollment(Actor.user("nina"))
    service.enroll_one(read_input(ANA))
    service.reschedule("ana", ANA["procedure_date"] + timedelta(days=7))
    app.enrollment(Actor.api_key("front desk")).cancel("ana", "moved clinics")

    assert audit_actions(app) == [
        ("nina", "enroll", "ana"),
        ("nina", "reschedule", "ana"),
        ("key:front desk", "cancel", "ana"),
    ]
    detail = app.storage.access.audit_entries(limit=1)[0].detail
    assert "moved clinics" in detail
    assert ANA_PHONE not in str(app.storage.access.audit_entries())


# -- API key scopes ---------------------------------------------------------------------------


def test_a_viewer_key_reads_but_may_not_change_anything(world: World) -> None:
    key, _ = create_key(world.app, "dashboard", Role.VIEWER)
    viewer = {"Authorization": f"Bearer {key}"}
    assert world.enroll("ana", ANA_PHONE).status_code == 201

    assert world.client.get("/v1/patients", headers=viewer).status_code == 200
    changes = [
        ("POST", "/v1/enrollments", {**ANA, "procedure_date": "2026-03-09"}),
        ("PATCH", "/v1/patients/ana", {"first_name": "Anna"}),
        ("POST", "/v1/patients/ana/reschedule", {"procedure_date": "2026-03-09"}),
        ("POST", "/v1/patients/ana/cancel", {"reason": "no"}),
        ("POST", "/v1/flags/1/resolve", {"note": "called"}),
    ]
    for method, path, body in changes:
        response = world.client.request(method, path, json=body, headers=viewer)
        assert response.status_code == 403, (path, response.text)
        assert "staff scope" in response.json()["message"]
    assert world.get("/v1/patients")[0]["procedure_date"] == "2026-03-02"


def test_api_changes_are_audited_under_the_keys_name(world: World) -> None:
    world.enroll("ana", ANA_PHONE)
    world.client.post("/v1/patients/ana/cancel", json={"reason": "r"}, headers=world.headers)

    assert audit_actions(world.app)[-2:] == [
        ("key:tests", "enroll", "ana"),
        ("key:tests", "cancel", "ana"),
    ]


def test_the_docs_are_public_only_when_the_clinic_says_so(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from reminders.api.app import create_app

    app = App.from_settings(make_settings(tmp_path, public_api_docs=True))
    with TestClient(create_app(app)) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/v1/patients").status_code == 401
    app.close()


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for the CLI: a SQLite file and the test plan."""
    monkeypatch.chdir(tmp_path)
    settings = make_settings(tmp_path)
    return {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
        "REMINDERS_PASSWORD_HASH_MEMORY_KIB": "1024",
        "COLUMNS": "200",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(cli, list(args), env=env, input=stdin)


def cli_audit(env: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """The audit log of the CLI's database."""
    app = App.from_settings(Settings(_env_file=None, database_url=env["REMINDERS_DATABASE_URL"]))
    try:
        return audit_actions(app)
    finally:
        app.close()


def test_users_are_created_listed_reset_and_disabled_from_the_cli(env: dict[str, str]) -> None:
    created = run(
        env, "--as", "it-desk", "users", "create", "ada", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    prompted = run(env, "users", "create", "ben", "--role", "viewer", stdin=f"{PASSWORD}\n" * 2)
    reset = run(env, "users", "reset-password", "ben", "--password-stdin", stdin="a new password\n")
    disabled = run(env, "users", "disable", "ben")

    for result in (created, prompted, reset, disabled):
        assert result.exit_code == 0, result.output
    assert PASSWORD not in prompted.output
    users = {u["name"]: u for u in json.loads(run(env, "users", "list", "--json").stdout)}
    assert (users["ada"]["role"], users["ada"]["disabled_at"]) == ("admin", None)
    assert (users["ben"]["role"], users["ben"]["disabled_at"] is not None) == ("viewer", True)
    actors = [(actor, action) for actor, action, _ in cli_audit(env)]
    assert actors[0] == ("cli:it-desk", "user.create")
    assert [action for _, action in actors[1:]] == [
        "user.create",
        "user.reset_password",
        "user.disable",
    ]
    assert actors[1][0].startswith("cli:")  # the operating-system user without --as


def test_the_cli_refuses_an_unknown_role_and_a_short_password(env: dict[str, str]) -> None:
    bad_role = run(env, "users", "create", "cy", "--role", "superuser", "--password-stdin")
    short = run(env, "users", "create", "cy", "--role", "staff", "--password-stdin", stdin="x\n")

    assert bad_role.exit_code == 2
    assert "viewer, staff, admin" in bad_role.output
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    assert "Traceback" not in short.output


def test_api_keys_get_a_scope_from_the_cli(env: dict[str, str]) -> None:
    created = run(env, "api-keys", "create", "lab", "--scope", "viewer")
    missing = run(env, "api-keys", "create", "lab")

    assert created.exit_code == 0, created.output
    assert missing.exit_code == 2
    assert "--scope" in missing.output
    [record] = json.loads(run(env, "api-keys", "list", "--json").stdout)
    assert record["scope"] == "viewer"
    assert cli_audit(env)[0][1] == "api_key.create"
