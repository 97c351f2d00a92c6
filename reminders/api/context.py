"""What every route works with, built once per API app and found on `request.app.state`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from reminders.access.actor import Actor
from reminders.access.service import AccessService
from reminders.app import App
from reminders.consent import SmsConsentService
from reminders.dispatch.service import DispatchService
from reminders.enrollment import EnrollmentService
from reminders.replies.service import ReplyService
from reminders.store.storage import Storage

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    """The app, its services, and the dispatcher to wake after changes (if one runs here)."""

    app: App
    storage: Storage
    replies: ReplyService
    access: AccessService
    service: DispatchService | None = None

    @classmethod
    def build(cls, app: App, service: DispatchService | None) -> ApiContext:
        """Wire the services over one app."""
        return cls(
            app=app,
            storage=app.storage,
            replies=app.replies(),
            access=app.access(),
            service=service,
        )

    def enrollment(self, actor: Actor) -> EnrollmentService:
        """The enrollment operations in `actor`'s name (the audit log records them)."""
        return self.app.enrollment(actor)

    def sms_consent(self, actor: Actor) -> SmsConsentService:
        """Stopping and resuming SMS in `actor`'s name (the audit log records them)."""
        return self.app.sms_consent(actor)

    def wake_dispatcher(self) -> None:
        """Ask the dispatcher for a pass now; a failure here never fails the request."""
        if self.service is None:
            return
        try:
            self.service.wake()
        except Exception:  # the change is committed; the next scheduled pass picks it up
            log.warning("could not wake the dispatcher", exc_info=True)


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(_context)]
