"""The FastAPI application: staff API under /v1 (API keys), Twilio webhooks (signatures),
and the staff console under /console (signed-in users)."""

from __future__ import annotations

from fastapi import FastAPI

from reminders.api import routes_activity, routes_health, routes_patients, routes_plans, webhooks
from reminders.api.access_log import install_access_log_scrubber
from reminders.api.auth import ApiKeyMiddleware
from reminders.api.body_limit import BodyLimitMiddleware
from reminders.api.context import ApiContext
from reminders.api.errors import CatchAllMiddleware, install_error_handlers
from reminders.app import App
from reminders.console.app import install_console
from reminders.dispatch.service import DispatchService
from reminders.integrations.fhir import routes as fhir_routes

DESCRIPTION = """\
Enroll patients on recovery plans, follow what was sent and what they answered.

Every `/v1` request needs an API key (`reminders api-keys create NAME --scope viewer|staff|admin`),
sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A `viewer` key reads; changes
need `staff`; the scopes are the console's roles. Errors are JSON
`{"error", "message", "fields"}`; a 422 names each bad field.
"""


def create_app(app: App, service: DispatchService | None = None) -> FastAPI:
    """The HTTP API over one `App`; `service`, when given, is woken after every change."""
    context = ApiContext.build(app, service)
    api = FastAPI(
        title="Recovery-plan reminders",
        version="1",
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    api.state.context = context
    install_error_handlers(api)
    api.include_router(routes_patients.router)
    api.include_router(routes_activity.router)
    api.include_router(routes_plans.router)
    api.include_router(webhooks.router)
    api.include_router(fhir_routes.router)
    api.include_router(routes_health.router)
    install_console(api, app, context.wake_dispatcher)
    api.add_middleware(
        ApiKeyMiddleware,
        access=context.access,
        public_docs=app.settings.public_api_docs,
    )
    api.add_middleware(BodyLimitMiddleware)  # before the key and signature checks read anything
    api.add_middleware(CatchAllMiddleware)  # added last: the outermost, so it sees everything
    install_access_log_scrubber()
    return api
