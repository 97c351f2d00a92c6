"""Access errors: what a person is told when signing in or acting is refused."""

from __future__ import annotations

from reminders.errors import ReminderError
from reminders.roles import Role


class SignInRefused(ReminderError):
    """Wrong name or password, a disabled user, or a locked one (the message says which it may)."""


class Forbidden(ReminderError):
    """The user's role (or the key's scope) does not allow the action."""

    def __init__(self, needed: Role, have: Role) -> None:
        self.needed = needed
        self.have = have
        super().__init__(f"this needs the {needed.value} role; you are {have.value}")


class WeakPassword(ReminderError):
    """A new password does not meet the length rule."""


class BadUserName(ReminderError):
    """A user name that is empty, too long, or has characters other than letters, digits, .-_@"""
