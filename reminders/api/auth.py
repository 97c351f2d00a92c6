"""API keys: every /v1 request must carry one (Authorization: Bearer, or X-API-Key).

The check runs as ASGI middleware, before the body is read or validated, so a request
without a valid key gets 401 and touches nothing. The dependency only documents the two
schemes in OpenAPI and hands the route the key's record.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reminders.store.access import AccessRepository
from reminders.store.records import ApiKeyRecord

PROTECTED_PREFIX = "/v1"
UNAUTHORIZED = {
    "error": "unauthorized",
    "message": "a valid API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
    "fields": [],
}

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def presented_key(headers: Headers) -> str | None:
    """The key a request carries, bearer token first."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


class ApiKeyMiddleware:
    """Answers 401 to any /v1 request without a valid, unrevoked key."""

    def __init__(self, app: ASGIApp, access: AccessRepository) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        record = await run_in_threadpool(self.access.verify_api_key, key) if key else None
        if record is None:
            response = JSONResponse(
                UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = record
        await self.app(scope, receive, send)


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _api_key(
    request: Request,
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    _header_key: Annotated[str | None, Security(_api_key_header)],
) -> ApiKeyRecord:
    record: ApiKeyRecord | None = getattr(request.state, "api_key", None)
    if record is None:  # the middleware lets no such request through; never trust that alone
        raise HTTPException(401, UNAUTHORIZED["message"], headers={"WWW-Authenticate": "Bearer"})
    return record


RequireApiKey = Depends(_api_key)
