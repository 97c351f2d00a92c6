"""Request bodies are bounded while they are read, before any parsing or signature check.

A declared Content-Length over the limit is answered 413 at once; a chunked body is read up
to the limit and answered 413 as soon as it passes it, so memory never holds more than the
limit (plus one chunk) whatever the client sends. Bodies within the limit are handed on as
they came.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminders.api.errors import error_body

MAX_API_BODY_BYTES = 1_000_000
MAX_WEBHOOK_BODY_BYTES = 64 * 1024
WEBHOOK_PREFIX = "/twilio/"
MAX_CONSOLE_UPLOAD_BYTES = 10_500_000  # the console's CSV upload: a 10 MB file and its form
CONSOLE_UPLOAD_PATH = "/console/import/check"


def body_limit(path: str) -> int:
    """The largest body a path accepts: Twilio's forms are small, the staff API's bodies are not,
    and the console's CSV upload is the largest."""
    if path == CONSOLE_UPLOAD_PATH:
        return MAX_CONSOLE_UPLOAD_BYTES
    return MAX_WEBHOOK_BODY_BYTES if path.startswith(WEBHOOK_PREFIX) else MAX_API_BODY_BYTES


class BodyLimitMiddleware:
    """Reads each request body up to its path's limit before the app sees it (413 past it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(str(scope.get("path", "")))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


def _replay(chunks: list[bytes], first: Message | None, receive: Receive) -> Receive:
    """A receive() that gives the body already read as one message, then the real stream."""
    pending: list[Message] = (
        [first] if first is not None else [{"type": "http.request", "body": b"".join(chunks)}]
    )

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        error_body("request_entity_too_large", f"the request body is over {limit:,} bytes"),
        status_code=413,
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
