"""Who may open a page or submit a form: the session, the role, and the CSRF token.

Every console route is declared through a `ConsoleRouter`, as a `page` (GET, a role needed to
read) or an `action` (POST, a role needed to change, and the session's CSRF token in the form).
The router records each route's rule, so a test can walk every route with every role.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from reminders.access.service import StaffIdentity
from reminders.console.context import console_context
from reminders.roles import Role

PREFIX = "/console"
SESSION_COOKIE = "reminders_session"
CSRF_FIELD = "csrf_token"


class Refused(Exception):
    """A console request that may not go on; the handler answers with a page."""

    status_code = 403

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotSignedIn(Refused):
    """No live session: go to the sign-in page (saying so when a session just ended)."""

    status_code = 401

    def __init__(self, ended: bool) -> None:
        super().__init__("your session has ended; sign in again" if ended else "please sign in")
        self.ended = ended


class RoleRefused(Refused):
    """The signed-in user's role is below what the route needs."""

    def __init__(self, needed: Role, have: Role) -> None:
        super().__init__(f"This needs the {needed.value} role; you are signed in as {have.value}.")


class CsrfRefused(Refused):
    """A form that changes something came without this session's CSRF token."""

    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this console. "
            "Go back, reload the page and try again."
        )


@dataclass(frozen=True)
class RouteRule:
    """What one console route needs: the role, and whether it changes something."""

    method: str
    path: str
    role: Role | None  # None: open to anyone (the sign-in page)
    changes: bool


def tokens_match(given: object, expected: str) -> bool:
    """Whether a submitted token is the expected one (constant time)."""
    return isinstance(given, str) and secrets.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def current_identity(request: Request) -> StaffIdentity | None:
    """The user behind the request's session cookie, if the session is live."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return console_context(request).access.resume(token)


def _signed_in(request: Request) -> StaffIdentity:
    identity = current_identity(request)
    if identity is None:
        raise NotSignedIn(ended=bool(request.cookies.get(SESSION_COOKIE)))
    request.state.identity = identity
    return identity


SignedIn = Annotated[StaffIdentity, Depends(_signed_in)]


def _page_guard(needed: Role) -> Callable[..., StaffIdentity]:
    def check(identity: SignedIn) -> StaffIdentity:
        if not identity.role.allows(needed):
            raise RoleRefused(needed, identity.role)
        return identity

    return check


def _action_guard(needed: Role) -> Callable[..., Any]:
    async def check(request: Request, identity: SignedIn) -> StaffIdentity:
        form = await request.form()  # FastAPI has read it already; this is the cached form
        request.state.form = form
        if not tokens_match(form.get(CSRF_FIELD), identity.csrf_token):
            raise CsrfRefused()
        if not identity.role.allows(needed):
            raise RoleRefused(needed, identity.role)
        return identity

    return check


class ConsoleRouter:
    """An APIRouter whose every route states the role it needs (and records it)."""

    def __init__(self) -> None:
        self.router = APIRouter(prefix=PREFIX, include_in_schema=False)
        self.rules: list[RouteRule] = []

    def page(self, path: str, role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET page readable by `role` and above."""
        self.rules.append(RouteRule("GET", PREFIX + path, role, changes=False))
        return self.router.get(path, dependencies=[Depends(_page_guard(role))])

    def action(self, path: str, role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A POST form that changes something: `role` and above, with the CSRF token."""
        self.rules.append(RouteRule("POST", PREFIX + path, role, changes=True))
        return self.router.post(path, dependencies=[Depends(_action_guard(role))])

    def open_page(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET page anyone may open (the sign-in form)."""
        self.rules.append(RouteRule("GET", PREFIX + path, None, changes=False))
        return self.router.get(path)

    def open_action(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A POST anyone may send; the route checks its own token (signing in)."""
        self.rules.append(RouteRule("POST", PREFIX + path, None, changes=True))
        return self.router.post(path)
