"""The console over a running world: one user per role and a browser-like client (https).

The client is a second TestClient on the world's application, at the https public URL so the
session cookie (Secure there) travels back, as it would in a browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from api_fixtures import World, running_world
from fastapi.testclient import TestClient
from httpx import Response

from reminders.access.actor import Actor
from reminders.roles import Role

PASSWORD = "correct horse battery"
USERS = {Role.VIEWER: "vera", Role.STAFF: "sam", Role.ADMIN: "ada"}
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(world: World) -> TestClient:
    """A fresh cookie jar on the world's app, as a browser at the https public URL."""
    return TestClient(world.client.app, base_url="https://testserver", follow_redirects=False)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Response:
    """Open the sign-in form and submit it with its token, as a browser does."""
    form = client.get("/console/sign-in")
    token = _FORM_TOKEN.search(form.text)
    assert token, form.text
    data = {"name": name, "password": password, "form_token": token.group(1)}
    return client.post("/console/sign-in", data=data)


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, read from a page's forms (the sign-out form has it)."""
    response = client.get("/console/today")
    match = _CSRF_TOKEN.search(response.text)
    assert match, response.text
    return match.group(1)


@dataclass
class ConsoleWorld:
    """A running world with one user of each role."""

    world: World

    def signed_in(self, role: Role) -> TestClient:
        """A client signed in as the user with `role`."""
        client = browser(self.world)
        response = sign_in(client, USERS[role])
        assert response.status_code == 303, response.text
        return client


@contextmanager
def console_world(root: Path, database_url: str | None = None) -> Iterator[ConsoleWorld]:
    """A running world (frozen time, real database) with users vera, sam and ada."""
    with running_world(root, database_url) as world:
        access = world.app.access()
        for role, name in USERS.items():
            access.create_user(name, role, PASSWORD, Actor.cli("setup"))
        yield ConsoleWorld(world)
