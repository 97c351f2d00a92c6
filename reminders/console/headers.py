"""The headers every console answer carries: a strict CSP, no caching of pages, no framing.

Pages (everything under /console but the static assets) are `Cache-Control: no-store`: they show
patients, and a shared ward computer must not keep them. The Content-Security-Policy allows
scripts, styles and images from the console itself only: no inline script, no inline style.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminders.console.guard import PREFIX

STATIC_PREFIX = PREFIX + "/static/"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_console_path(path: str) -> bool:
    """Whether a path belongs to the console."""
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleHeadersMiddleware:
    """Adds the security headers to console answers, and `no-store` to every page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        if not is_console_path(path):
            await self.app(scope, receive, send)
            return
        static = path.startswith(STATIC_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["Cache-Control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
