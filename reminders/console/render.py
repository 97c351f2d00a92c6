"""Pages from Jinja2 templates (autoescaped), with the headers every console page carries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reminders.access.service import StaffIdentity
from reminders.console.guard import CSRF_FIELD, PREFIX
from reminders.redact import mask_email, mask_phone
from reminders.roles import Role

NAV = (  # (key, label, path, the role that may open it)
    ("today", "Today", "/today", Role.VIEWER),
    ("patients", "Patients", "/patients", Role.VIEWER),
    ("enroll", "Enroll", "/enroll", Role.STAFF),
    ("import", "Import CSV", "/import", Role.STAFF),
    ("plans", "Plans", "/plans", Role.VIEWER),
    ("messages", "Messages", "/messages", Role.VIEWER),
    ("outcomes", "Outcomes", "/outcomes", Role.VIEWER),
    ("feeds", "Feed log", "/feeds", Role.STAFF),
    ("audit", "Audit log", "/audit", Role.ADMIN),
)


@cache
def environment() -> Environment:
    """The template environment: HTML autoescaped, unknown names an error."""
    env = Environment(
        loader=PackageLoader("reminders.console", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(prefix=PREFIX, csrf_field=CSRF_FIELD, nav=NAV)
    env.filters.update(when=_when, local=_local, phone=_phone, email=_email)
    return env


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    identity: StaffIdentity | None = None,
    **values: Any,
) -> HTMLResponse:
    """A rendered page for the signed-in user (or the sign-in form when there is none)."""
    who = identity or getattr(request.state, "identity", None)
    values.setdefault("active", "")
    html = environment().get_template(template).render(identity=who, **values)
    return HTMLResponse(html, status_code=status_code)


def _when(value: datetime | None) -> str:
    """An instant as staff read it in lists: 2026-03-02 09:00 UTC."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _local(value: datetime | None, zone: str) -> str:
    """An instant in the patient's time zone: 2026-03-02 09:00."""
    return "" if value is None else value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _phone(value: str | None) -> str:
    return mask_phone(value) if value else ""


def _email(value: str | None) -> str:
    return mask_email(value) if value else ""
