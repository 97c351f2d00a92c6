"""A real console server for the browser tests: uvicorn on a loopback port over a SQLite file
seeded through the services (an enrolled patient with a sent text, a reply and a flag), Debian's
Chromium driven by Playwright, axe-core from tests/node_modules, and screenshots of each page.

Screenshots go to $CONSOLE_SCREENSHOTS (scripts/screenshots.sh sets docs/screenshots), else to
var/screenshots/, which CI keeps.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from api_fixtures import ANA, RELIEF_4_AT, WELCOME_AT, running_world
from console_fixtures import PASSWORD, USERS

from reminders.access.actor import Actor
from reminders.api.app import create_app
from reminders.app import App
from reminders.roles import Role

ROOT = Path(__file__).resolve().parents[1]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
HOW_TO_GET_AXE = "axe-core is missing: run `npm ci --prefix tests` (scripts/test.sh does)"
LOCKED_USER = "lou"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def screenshot_dir() -> Path:
    """Where the tests save their screenshots."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or ROOT / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Server:
    """The console at `url`, over `app`."""

    url: str
    app: App


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seed(root: Path) -> App:
    """Ana enrolled, her welcome and week-4 relief check sent, her reply '3 Y, fever' flagged;
    Ben enrolled; one user per role and one to lock. Returns the settings' app (closed)."""
    with running_world(root) as world:
        assert world.enroll("ana", ANA).status_code == 201
        assert world.enroll("ben", "+13125550188", procedure_date="2026-03-09").status_code == 201
        world.at(WELCOME_AT)
        world.send_due()
        world.at(RELIEF_4_AT)
        world.send_due()
        assert world.text(ANA, "3 Y but I had a fever").status_code == 200
        access = world.app.access()
        for role, name in USERS.items():
            access.create_user(name, role, PASSWORD, Actor.cli("setup"))
        access.create_user(LOCKED_USER, Role.STAFF, PASSWORD, Actor.cli("setup"))
        return world.app


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The seeded console served by uvicorn in a thread, at real time."""
    seeded = _seed(tmp_path_factory.mktemp("console"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = App.from_settings(seeded.settings.model_copy(update={"public_base_url": url}))
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the console server did not start"
    yield Server(url, app)
    server.should_exit = True
    thread.join(timeout=10)
    app.close()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (one per test module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; CSP violations fail the test."""
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    opened = context.new_page()
    violations: list[str] = []
    opened.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield opened
    context.close()
    assert violations == [], violations


def sign_in(page: Any, url: str, name: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as staff do."""
    page.goto(f"{url}/console/sign-in")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def axe_problems(browser: Any, url: str, cookies: list[dict[str, Any]]) -> list[str]:
    """Serious or critical axe-core findings on the page at `url`, in a context allowed to run
    the injected checker (the console's CSP forbids it, rightly)."""
    if not AXE.exists():
        pytest.skip(HOW_TO_GET_AXE)
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORTS["desktop"])
    context.add_cookies(cookies)
    checked = context.new_page()
    checked.goto(url)
    checked.add_script_tag(path=str(AXE))
    results = checked.evaluate("async () => (await axe.run(document)).violations")
    context.close()
    return [
        f"{v['impact']}: {v['id']}: {v['help']} ({len(v['nodes'])} node(s): "
        f"{v['nodes'][0]['target']})"
        for v in results
        if v["impact"] in ("serious", "critical")
    ]
