"""Mounts the console into the HTTP application: routes, static assets, headers, refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from reminders.app import App
from reminders.console import (
    routes_activity,
    routes_enroll,
    routes_feeds,
    routes_patient,
    routes_patients,
    routes_plans,
    routes_session,
    routes_today,
)
from reminders.console.context import ConsoleContext
from reminders.console.guard import PREFIX, NotSignedIn, Refused, RouteRule
from reminders.console.headers import STATIC_PREFIX, ConsoleHeadersMiddleware, is_console_path
from reminders.console.render import page

STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (
    routes_session.routes,
    routes_today.routes,
    routes_patients.routes,
    routes_patient.routes,
    routes_enroll.routes,
    routes_activity.routes,
    routes_plans.routes,
    routes_feeds.routes,
)


def console_rules() -> list[RouteRule]:
    """Every console route with the role it needs (the role walk test reads this)."""
    return [rule for routes in ROUTERS for rule in routes.rules]


def install_console(api: FastAPI, app: App, wake: Callable[[], None] | None = None) -> None:
    """Add the console under /console to `api` (call before the outer middleware is added)."""
    api.state.console = ConsoleContext.build(app, wake)
    for routes in ROUTERS:
        api.include_router(routes.router)
    api.mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC_DIR), name="console-static")
    api.add_exception_handler(Refused, _refused)
    for kind in (HTTPException, RequestValidationError):
        api.add_exception_handler(kind, _as_page(api.exception_handlers.get(kind)))
    api.add_middleware(ConsoleHeadersMiddleware)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _as_page(api_handler: Any) -> Handler:
    """Console requests get an HTML page for a 404 or a malformed address; others the API's
    JSON answer, from the handler installed before."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not is_console_path(request.url.path) and api_handler is not None:
            answer: Response = await api_handler(request, exc)
            return answer
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return page(request, "refused.html", status_code=405, message="Not allowed here.")
        return page(request, "not_found.html", status_code=status, what="page")

    return handle


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    if isinstance(exc, NotSignedIn):
        suffix = "?ended=1" if exc.ended else ""
        return RedirectResponse(f"{PREFIX}/sign-in{suffix}", status_code=303)
    return page(request, "refused.html", status_code=exc.status_code, message=exc.message)
