"""What every console route works with, built once and found on `request.app.state`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from reminders.access.service import AccessService
from reminders.app import App
from reminders.console.uploads import PendingUploads
from reminders.replies.service import ReplyService

log = logging.getLogger(__name__)


@dataclass
class ConsoleContext:
    """The app, the services the pages call, and how to wake the dispatcher after a change."""

    app: App
    access: AccessService
    replies: ReplyService
    wake: Callable[[], None] | None = None
    uploads: PendingUploads = field(default_factory=PendingUploads)

    @classmethod
    def build(cls, app: App, wake: Callable[[], None] | None = None) -> ConsoleContext:
        """Wire the services over one app."""
        return cls(app=app, access=app.access(), replies=app.replies(), wake=wake)

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry `Secure` when the clinic serves the console over https."""
        return self.app.settings.public_base_url.lower().startswith("https://")

    def wake_dispatcher(self) -> None:
        """Ask for a dispatch pass now; a failure here never fails the page."""
        if self.wake is None:
            return
        try:
            self.wake()
        except Exception:  # the change is committed; the next scheduled pass picks it up
            log.warning("could not wake the dispatcher", exc_info=True)


def console_context(request: Request) -> ConsoleContext:
    """The console's context from the running application."""
    context: ConsoleContext = request.app.state.console
    return context
