"""What one CLI invocation shares between commands: settings and an App, each made on first use.

Nothing heavy is imported here at start-up (see reminders/cli/main.py): settings, the App and
the plan catalog are imported and built only by the commands that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from reminders.access.actor import Actor
from reminders.errors import InputProblem, SettingsError

if TYPE_CHECKING:
    from reminders.app import App
    from reminders.catalog import PlanCatalog
    from reminders.enrollment import EnrollmentService
    from reminders.settings import Settings
    from reminders.templating.context import Clinic


def read_settings() -> Settings:
    """Settings read now from the environment (never the process-wide cached copy)."""
    from pydantic import ValidationError

    from reminders.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(
            [
                InputProblem(
                    "REMINDERS_" + "_".join(str(p) for p in error["loc"]).upper(),
                    str(error["msg"]),
                )
                for error in exc.errors()
            ]
        ) from None


class CliState:
    """Settings for this invocation, read on first use; the database is opened only by commands
    that need it."""

    def __init__(self, settings: Settings | None = None, as_name: str | None = None) -> None:
        self._settings = settings
        self.actor = Actor.cli(as_name)
        self._app: App | None = None
        self._catalog: PlanCatalog | None = None

    @property
    def settings(self) -> Settings:
        """The settings, read from the environment the first time a command asks."""
        if self._settings is None:
            self._settings = read_settings()
        return self._settings

    @property
    def app(self) -> App:
        """The composition root, opening (and migrating) the database on first use."""
        if self._app is None:
            from reminders.app import App

            self._app = App.from_settings(self.settings)
        return self._app

    def enrollment(self) -> EnrollmentService:
        """The enrollment operations, recorded in the audit log as this command's actor."""
        return self.app.enrollment(self.actor)

    @property
    def catalog(self) -> PlanCatalog:
        """The plans, without opening the database when it is not open yet."""
        if self._app is not None:
            return self._app.catalog
        if self._catalog is None:
            from reminders.catalog import PlanCatalog

            self._catalog = PlanCatalog(self.settings.plans_dir, self.settings.templates_dir)
        return self._catalog

    @property
    def clinic(self) -> Clinic:
        """Who messages come from, as templates name it."""
        from reminders.templating.context import Clinic

        return Clinic.from_settings(self.settings)

    def close(self) -> None:
        """Release the database if a command opened it."""
        if self._app is not None:
            self._app.close()
            self._app = None


def get_state(ctx: typer.Context) -> CliState:
    """The state the top-level callback put on the context."""
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked without the top-level group (should not happen)
        state = CliState()
        ctx.obj = state
        ctx.call_on_close(state.close)
    return state
