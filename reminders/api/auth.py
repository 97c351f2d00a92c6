"""API keys: every /v1 request must carry one (Authorization: Bearer, or X-API-Key).

The check runs as ASGI middleware, before the body is read or validated, so a request
without a valid key gets 401 and touches nothing. The dependencies document the two schemes
in OpenAPI, hand the route the key's record, and refuse (403) a key whose scope (viewer,
staff, admin: the console's roles) is below what the route needs.

`/docs` and `/openapi.json` need a key too, or a console session of an admin, unless the
clinic turns public docs on (REMINDERS_PUBLIC_API_DOCS=true).
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reminders.access.actor import Actor
from reminders.access.presented import presented_key
from reminders.access.service import AccessService
from reminders.console.guard import SESSION_COOKIE
from reminders.roles import Role
from reminders.store.access_records import ApiKeyRecord

PROTECTED_PREFIX = "/v1"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})
UNAUTHORIZED = {
    "error": "unauthorized",
    "message": "a valid API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
    "fields": [],
}

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


class ApiKeyMiddleware:
    """Answers 401 to any /v1 request (and the docs) without a valid, unrevoked key."""

    def __init__(
        self,
        app: ASGIApp,
        access: AccessService,
        public_docs: bool = False,
    ) -> None:
        self.app = app
        self.access = access
        self.public_docs = public_docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        docs = path in DOCS_PATHS and not self.public_docs
        if not (docs or _protected(path)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = presented_key(headers)
        record = await run_in_threadpool(self.access.verify_api_key, key) if key else None
        if record is None and docs and await run_in_threadpool(self._admin_session, headers):
            await self.app(scope, receive, send)
            return
        if record is None:
            response = JSONResponse(
                UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = record
        await self.app(scope, receive, send)

    def _admin_session(self, headers: Headers) -> bool:
        """Whether the request carries the console session cookie of a signed-in admin."""
        token = _cookie(headers, SESSION_COOKIE)
        identity = self.access.resume(token) if token else None
        return identity is not None and identity.role is Role.ADMIN


def _cookie(headers: Headers, name: str) -> str | None:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel else None


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
ApiKeyUser = Annotated[ApiKeyRecord, RequireApiKey]


def require_scope(needed: Role) -> Any:
    """A dependency: the key's actor, or 403 when its scope is below `needed`."""

    def check(record: ApiKeyUser) -> Actor:
        if not record.scope.allows(needed):
            raise HTTPException(
                403,
                f"this needs an API key with the {needed.value} scope; this key is {record.scope}",
            )
        return Actor.api_key(record.name)

    return Depends(check)


StaffKey = Annotated[Actor, require_scope(Role.STAFF)]
AdminKey = Annotated[Actor, require_scope(Role.ADMIN)]
FORBIDDEN_RESPONSE: dict[int | str, dict[str, Any]] = {
    403: {"description": "The API key's scope does not allow this."}
}
