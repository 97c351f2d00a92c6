"""The console's frame: sign-in, sessions, lockout, and every route checked for role and CSRF.

The walk below takes every console route (the routers record each one's rule, and the test
proves no route escapes the record) with no session and with each role, and proves that every
change is refused to a viewer and to a request without this session's CSRF token: the audit log
and the flag it would resolve are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import WELCOME_AT
from console_fixtures import (
    PASSWORD,
    USERS,
    ConsoleWorld,
    browser,
    console_world,
    csrf_token,
    sign_in,
)
from fastapi.routing import APIRoute

from reminders.console.app import console_rules
from reminders.console.guard import PREFIX, SESSION_COOKIE, RouteRule
from reminders.console.headers import CONTENT_SECURITY_POLICY
from reminders.roles import Role

TEMPLATES = Path(__file__).parents[1] / "reminders" / "console" / "templates"
ANA_PHONE = "+12025550143"
CSV = (
    b"external_id,first_name,phone,sms_consent,timezone,plan,procedure_date\n"
    b"bea,Bea,+12025550177,yes,UTC,knee,2026-03-09\n"
)
# A valid form for every change (a refusal is then for the role or the token, never the input).
CHANGE_FIELDS = {
    "note": "called",
    "plan": "knee",
    "procedure_date": "2026-03-16",
    "phone": "+12025550199",
    "preferred_channel": "sms",
    "reason": "moved away",
    "external_id": "cruz",
    "first_name": "Cruz",
    "timezone": "UTC",
    "sms_consent": "yes",
}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Users of each role, and 'ana' enrolled with an open flag (a reply naming a fever)."""
    with console_world(tmp_path) as cw:
        world = cw.world
        assert world.enroll("ana", ANA_PHONE).status_code == 201
        world.at(WELCOME_AT)
        world.send_due()
        assert world.text(ANA_PHONE, "I have a fever").status_code == 200
        assert len(world.app.storage.outcomes.list_flags()) == 1
        yield cw


def _path(rule: RouteRule, console: ConsoleWorld) -> str:
    flag = console.world.app.storage.outcomes.list_flags(open_only=False)[0]
    path = rule.path.replace("{flag_id}", str(flag.id)).replace("{external_id:path}", "ana")
    return path.replace("{plan_id}", "knee")


def _audit_count(console: ConsoleWorld) -> int:
    return len(console.world.app.storage.access.audit_entries(limit=10_000))


def _csv_file() -> dict[str, tuple[str, bytes, str]]:
    """A one-row CSV upload (a new patient), sent with every change the walk tries."""
    return {"file": ("patients.csv", CSV, "text/csv")}


def _timeline(console: ConsoleWorld) -> list[tuple[str, str, object]]:
    """Ana's messages as (step, status, due): any change to her would show here."""
    return [
        (m.step_id, m.status, m.due_at)
        for m in console.world.app.storage.message_views.timeline("ana")
    ]


def _open_flags(console: ConsoleWorld) -> int:
    return len(console.world.app.storage.outcomes.list_flags())


def test_every_console_route_states_its_rule() -> None:
    from reminders.console.app import ROUTERS

    declared = {(rule.method, rule.path) for rule in console_rules()}
    routed = {
        (method, PREFIX + route.path.removeprefix(PREFIX))
        for routes in ROUTERS
        for route in routes.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routed == declared
    open_to_all = {(rule.method, rule.path) for rule in console_rules() if rule.role is None}
    assert open_to_all == {
        ("GET", "/console"),  # a redirect to Today
        ("GET", "/console/sign-in"),
        ("POST", "/console/sign-in"),
    }


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r or "anonymous")
def test_every_page_answers_each_role_by_its_rule(console: ConsoleWorld, role: Role | None) -> None:
    client = browser(console.world) if role is None else console.signed_in(role)
    for rule in console_rules():
        if rule.changes:
            continue
        response = client.get(_path(rule, console))
        if rule.role is None:
            assert response.status_code in (200, 303), rule
        elif role is None:
            assert response.status_code == 303, rule
            assert response.headers["location"] == "/console/sign-in"
        elif role.allows(rule.role):
            assert response.status_code in (200, 303), (rule, response.text)
        else:
            assert response.status_code == 403, rule


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r or "anonymous")
def test_every_change_is_refused_without_the_sessions_csrf_token(
    console: ConsoleWorld, role: Role | None
) -> None:
    client = browser(console.world) if role is None else console.signed_in(role)
    before = (_audit_count(console), _open_flags(console))
    timeline = _timeline(console)
    other = console.signed_in(Role.STAFF)
    other_token = csrf_token(other)  # a real token, of another session
    for rule in console_rules():
        if not rule.changes or rule.role is None:
            continue
        path = _path(rule, console)
        for data in (
            CHANGE_FIELDS,
            {**CHANGE_FIELDS, "csrf_token": ""},
            {**CHANGE_FIELDS, "csrf_token": other_token},
        ):
            response = client.post(path, data=data, files=_csv_file())
            assert response.status_code == (303 if role is None else 403), (rule, data)
            if role is None:
                assert response.headers["location"] == "/console/sign-in"
    assert (_audit_count(console), _open_flags(console)) == before
    assert _timeline(console) == timeline
    assert client.get("/console/today").status_code == (303 if role is None else 200)


def test_every_change_is_refused_to_a_viewer_with_a_valid_token(console: ConsoleWorld) -> None:
    timeline = _timeline(console)
    viewer = console.signed_in(Role.VIEWER)
    token = csrf_token(viewer)
    before = (_audit_count(console), _open_flags(console))
    for rule in console_rules():
        if not rule.changes or rule.role is None or rule.role is Role.VIEWER:
            continue
        response = viewer.post(
            _path(rule, console), data={**CHANGE_FIELDS, "csrf_token": token}, files=_csv_file()
        )
        assert response.status_code == 403, rule
        assert f"needs the {rule.role.value} role; you are signed in as viewer" in response.text
    assert (_audit_count(console), _open_flags(console)) == before
    assert _timeline(console) == timeline


def test_staff_resolve_a_flag_with_a_note_in_their_own_name(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    today = staff.get("/console/today")
    assert "ana" in today.text and "Resolved" in today.text
    flag = console.world.app.storage.outcomes.list_flags()[0]

    response = staff.post(
        f"/console/flags/{flag.id}/resolve",
        data={"csrf_token": csrf_token(staff), "note": "called, no fever now"},
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/console/today?notice=resolved"
    resolved = console.world.app.storage.outcomes.list_flags(open_only=False)[0]
    assert resolved.resolved_by == "sam"
    assert resolved.resolution_note == "called, no fever now"
    entry = console.world.app.storage.access.audit_entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.external_id) == ("sam", "flag.resolve", "ana")
    assert "No open flags." in staff.get("/console/today?notice=resolved").text


def test_a_viewer_sees_flags_without_the_resolve_form(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get("/console/today")

    assert page.status_code == 200
    assert "Please call the patient" in page.text
    assert "/resolve" not in page.text


# -- sign-in, cookies, sessions -------------------------------------------------------------------


def test_the_session_cookie_is_httponly_samesite_and_secure_on_https(console: ConsoleWorld) -> None:
    response = sign_in(browser(console.world), USERS[Role.STAFF])

    assert response.status_code == 303
    assert response.headers["location"] == "/console/today"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes


def test_a_wrong_password_says_so_without_saying_which(console: ConsoleWorld) -> None:
    response = sign_in(browser(console.world), USERS[Role.STAFF], "not the password")

    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "Wrong user name or password." in sign_in(browser(console.world), "nobody").text


def test_five_failures_lock_the_user_and_the_page_says_for_how_long(console: ConsoleWorld) -> None:
    client = browser(console.world)
    for _ in range(4):
        assert "Wrong user name" in sign_in(client, "sam", "not the password").text
    locked = sign_in(client, "sam", "not the password")
    assert "locked for 15 more minute(s)" in locked.text
    assert "locked for" in sign_in(client, "sam", PASSWORD).text  # the right password, too late

    console.world.clock.tick(timedelta(minutes=16))
    assert sign_in(client, "sam", PASSWORD).status_code == 303


def test_a_sign_in_without_the_forms_token_is_refused(console: ConsoleWorld) -> None:
    client = browser(console.world)
    data = {"name": "sam", "password": PASSWORD, "form_token": "forged"}

    response = client.post("/console/sign-in", data=data)

    assert response.status_code == 403
    assert "expired" in response.text
    assert SESSION_COOKIE not in client.cookies


def test_thirty_idle_minutes_end_the_session(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    console.world.clock.tick(timedelta(minutes=29))
    assert staff.get("/console/today").status_code == 200  # activity keeps it alive
    console.world.clock.tick(timedelta(minutes=31))

    response = staff.get("/console/today")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?ended=1"
    assert "Your session ended" in staff.get(response.headers["location"]).text


def test_signing_out_ends_the_session_on_the_server(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    stolen = staff.cookies.get(SESSION_COOKIE)

    response = staff.post("/console/sign-out", data={"csrf_token": csrf_token(staff)})

    assert response.status_code == 303
    replay = browser(console.world)
    replay.cookies.set(SESSION_COOKIE, str(stolen))
    assert replay.get("/console/today").status_code == 303


# -- headers and markup ---------------------------------------------------------------------------


def test_pages_send_no_store_and_a_csp_without_inline_script_or_style(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)
    for path in ("/console/today", "/console/sign-in"):
        response = (
            staff.get(path) if path != "/console/sign-in" else browser(console.world).get(path)
        )
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "style-src 'self'" in CONTENT_SECURITY_POLICY
    css = staff.get("/console/static/console.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_templates_carry_no_inline_script_style_or_handler() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert "<style" not in text and " style=" not in text, template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert "hx-on" not in text and "js:" not in text, template.name


def test_every_form_control_has_a_label() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        for control in re.finditer(r"<(input|select|textarea)\b([^>]*)>", text):
            attributes = control.group(2)
            if 'type="hidden"' in attributes:
                continue
            ident = re.search(r'id="([^"]+)"', attributes)
            assert ident, (template.name, control.group(0))
            assert f'for="{ident.group(1)}"' in text, (template.name, control.group(0))


def test_console_root_opens_today_or_sign_in(console: ConsoleWorld) -> None:
    anonymous = browser(console.world)
    assert anonymous.get("/console").headers["location"] == "/console/today"
    assert anonymous.get("/console/today").headers["location"] == "/console/sign-in"


def test_the_same_forms_succeed_for_staff_with_the_token(console: ConsoleWorld) -> None:
    """The walk's refusals are for the role and the token: staff sending them get through,
    and each form that applies a change writes the audit log."""
    staff = console.signed_in(Role.STAFF)
    token = csrf_token(staff)
    checked = ""
    for rule in [r for r in console_rules() if r.changes and r.role is Role.STAFF]:
        data = {**CHANGE_FIELDS, "csrf_token": token}
        if rule.path == "/console/import":  # the file the check before it kept
            data["upload"] = re.findall(r'name="upload" value="([^"]+)"', checked)[0]
        if rule.path.endswith("/opt-in"):  # something to opt back in from (her new number)
            assert console.world.text(CHANGE_FIELDS["phone"], "STOP").status_code == 200
        audited = _audit_count(console)
        response = staff.post(_path(rule, console), data=data, files=_csv_file())
        assert response.status_code in (200, 303), (rule, response.text)
        if rule.path == "/console/import/check":
            checked = response.text
        applies = not rule.path.endswith(("/preview", "/check"))
        assert (_audit_count(console) > audited) is applies, rule


def test_an_unknown_console_address_is_a_page_and_the_api_keeps_its_json(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)

    missing = staff.get("/console/nowhere")
    malformed = staff.get("/console/patients/" + "x" * 200)
    api = console.world.client.get("/v1/nowhere", headers=console.world.headers)

    assert missing.status_code == 404 and "There is no such page" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert missing.headers["cache-control"] == "no-store"
    assert malformed.status_code == 404 and "There is no such page" in malformed.text
    assert api.status_code == 404 and api.json()["error"] == "not_found"
