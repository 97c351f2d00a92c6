"""Signing in and out. The sign-in form carries its own CSRF token (a cookie and a field)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reminders.access.errors import SignInRefused
from reminders.console.context import console_context
from reminders.console.guard import (
    PREFIX,
    SESSION_COOKIE,
    ConsoleRouter,
    SignedIn,
    current_identity,
    tokens_match,
)
from reminders.console.render import page
from reminders.roles import Role

SIGN_IN_COOKIE = "reminders_sign_in"
SIGN_IN_PATH = PREFIX + "/sign-in"
HOME_PATH = PREFIX + "/today"
MAX_FIELD = 1024

routes = ConsoleRouter()


def sign_in_form(request: Request, error: str = "", status_code: int = 200) -> HTMLResponse:
    """The sign-in page with a fresh form token, also set as a cookie for the POST to match."""
    token = secrets.token_urlsafe(32)
    ended = request.query_params.get("ended") == "1" and not error
    response = page(
        request,
        "sign_in.html",
        status_code=status_code,
        form_token=token,
        error=error,
        ended=ended,
        timeout_minutes=int(
            console_context(request).access.policy.session_timeout.total_seconds() // 60
        ),
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="strict",
        secure=console_context(request).secure_cookies,
    )
    return response


@routes.open_page("")
def console_home() -> RedirectResponse:
    """/console opens the Today page (or sign-in, which Today sends you to)."""
    return RedirectResponse(HOME_PATH, status_code=303)


@routes.open_page("/sign-in")
def sign_in_page(request: Request) -> Response:
    """The sign-in form (Today when already signed in)."""
    if current_identity(request) is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    return sign_in_form(request)


@routes.open_action("/sign-in")
def sign_in(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    form_token: Annotated[str, Form()] = "",
) -> Response:
    """Check the name and password; on success set the session cookie and open Today."""
    if not tokens_match(form_token, request.cookies.get(SIGN_IN_COOKIE) or secrets.token_hex()):
        return sign_in_form(request, "The sign-in form expired. Please try again.", status_code=403)
    ctx = console_context(request)
    try:
        signed = ctx.access.sign_in(name[:MAX_FIELD], password[: MAX_FIELD + 1])
    except SignInRefused as exc:
        return sign_in_form(request, _sentence(str(exc)), status_code=401)
    response = RedirectResponse(HOME_PATH, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.secure_cookies,
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response


@routes.action("/sign-out", Role.VIEWER)
def sign_out(request: Request, identity: SignedIn) -> RedirectResponse:
    """End the session and forget the cookie."""
    console_context(request).access.sign_out(identity)
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
