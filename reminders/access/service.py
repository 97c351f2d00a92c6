"""Staff users, sign-in with lockout, sessions with an inactivity timeout, and API keys.

Every change goes through here and is written to the audit log with the actor who made it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reminders.access.actor import Actor
from reminders.access.audit import AuditTrail
from reminders.access.errors import BadUserName, SignInRefused
from reminders.access.passwords import Passwords, check_new_password
from reminders.clock import utc_now
from reminders.errors import NotFoundError
from reminders.roles import Role
from reminders.store.access import AccessRepository
from reminders.store.access_records import ApiKeyRecord, UserRecord

_USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_TOUCH_EVERY = timedelta(seconds=30)  # fewer writes; the timeout is in minutes
WRONG_CREDENTIALS = "wrong user name or password"


@dataclass(frozen=True)
class AccessPolicy:
    """The knobs of sign-in and sessions (from the settings)."""

    session_timeout: timedelta = timedelta(minutes=30)
    lock_after: int = 5
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignedIn:
    """A user who is signed in: the session's secret (for the cookie) and its CSRF token."""

    token: str
    csrf_token: str
    user: str
    role: Role


@dataclass(frozen=True)
class StaffIdentity:
    """The user behind a live session, as a request sees them."""

    session_id: int
    user: str
    role: Role
    csrf_token: str

    @property
    def actor(self) -> Actor:
        """How the audit log names them."""
        return Actor.user(self.user)


@dataclass(frozen=True)
class UserView:
    """A user as admins see them (never the password hash)."""

    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None


def token_hash(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _view(user: UserRecord) -> UserView:
    return UserView(user.name, user.role, user.created_at, user.disabled_at, user.locked_until)


class AccessService:
    """Users, sign-in, sessions and API keys over the access repository."""

    def __init__(
        self,
        repository: AccessRepository,
        passwords: Passwords,
        policy: AccessPolicy,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.passwords = passwords
        self.policy = policy
        self.clock = clock

    def audit(self, actor: Actor) -> AuditTrail:
        """The audit trail in `actor`'s name."""
        return AuditTrail(self.repository, actor, self.clock)

    # -- users ------------------------------------------------------------------------------

    def create_user(self, name: str, role: Role, password: str, actor: Actor) -> UserView:
        """A new user with a role; the password is checked and stored hashed."""
        name = name.strip()
        if not _USER_NAME.match(name):
            raise BadUserName("a user name has 1 to 64 letters, digits or . _ @ - (e.g. a.nurse)")
        check_new_password(password)
        user = self.repository.add_user(name, role, self.passwords.hash(password), self.clock())
        self.audit(actor).record("user.create", detail=f"user {name}, role {role.value}")
        return _view(user)

    def users(self) -> list[UserView]:
        """Every user, disabled ones included."""
        return [_view(u) for u in self.repository.users()]

    def disable_user(self, name: str, actor: Actor) -> UserView:
        """Refuse the user's sign-ins from now on and end their sessions."""
        user = self._user(name)
        self.repository.disable(user.id, self.clock())
        self.audit(actor).record("user.disable", detail=f"user {name}")
        return _view(self._user(name))

    def reset_password(self, name: str, password: str, actor: Actor) -> UserView:
        """A new password for a user (also lifts a lockout)."""
        user = self._user(name)
        check_new_password(password)
        self.repository.set_password(user.id, self.passwords.hash(password), self.clock())
        self.audit(actor).record("user.reset_password", detail=f"user {name}")
        return _view(self._user(name))

    def _user(self, name: str) -> UserRecord:
        user = self.repository.user(name.strip())
        if user is None:
            raise NotFoundError(f"no user '{name.strip()}'")
        return user

    # -- sign-in and sessions ---------------------------------------------------------------

    def sign_in(self, name: str, password: str) -> SignedIn:
        """Check a name and password; SignInRefused after a mistake, a lockout or a disable."""
        now = self.clock()
        user = self.repository.user(name.strip()) if _USER_NAME.match(name.strip()) else None
        matches = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or user.disabled_at is not None:
            raise SignInRefused(WRONG_CREDENTIALS)
        if user.locked_until is not None and user.locked_until > now:
            raise SignInRefused(_locked_message(user.locked_until, now))
        if not matches:
            after = self.repository.record_failed_sign_in(
                user.id, now, self.policy.lock_after, self.policy.lock_for
            )
            if after.locked_until is not None and after.locked_until > now:
                raise SignInRefused(_locked_message(after.locked_until, now))
            raise SignInRefused(WRONG_CREDENTIALS)
        self.repository.clear_failed_sign_ins(user.id)
        if self.passwords.needs_rehash(user.password_hash):
            self.repository.set_password(user.id, self.passwords.hash(password), now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.repository.add_session(user.id, token_hash(token), csrf, now)
        return SignedIn(token, csrf, user.name, user.role)

    def resume(self, token: str) -> StaffIdentity | None:
        """The identity behind a session cookie, or None when it is unknown, ended or idle."""
        if not token or len(token) > 256:
            return None
        session = self.repository.session(token_hash(token))
        if session is None or session.ended_at is not None or session.user_disabled_at:
            return None
        now = self.clock()
        if now - session.last_seen_at > self.policy.session_timeout:
            self.repository.end_session(session.id, now)
            return None
        if now - session.last_seen_at > _TOUCH_EVERY:
            self.repository.touch_session(session.id, now)
        return StaffIdentity(session.id, session.user_name, session.role, session.csrf_token)

    def sign_out(self, identity: StaffIdentity) -> None:
        """End the session."""
        self.repository.end_session(identity.session_id, self.clock())

    # -- API keys ---------------------------------------------------------------------------

    def create_api_key(self, name: str, scope: Role, actor: Actor) -> tuple[str, ApiKeyRecord]:
        """A new key with a scope; returns the key (show it once) and its record."""
        name = name.strip()
        if not name:
            raise BadUserName("give the key a name, e.g. the system or person that will use it")
        key, record = self.repository.create_api_key(name[:128], scope, self.clock())
        self.audit(actor).record("api_key.create", detail=f"key {record.name}, scope {scope}")
        return key, record

    def revoke_api_key(self, prefix_or_id: str, actor: Actor) -> ApiKeyRecord:
        """Revoke a key by its id or prefix; requests with it get 401 from now on."""
        record = self.repository.revoke_api_key(prefix_or_id, self.clock())
        self.audit(actor).record("api_key.revoke", detail=f"key {record.name} ({record.prefix})")
        return record

    def verify_api_key(self, key: str) -> ApiKeyRecord | None:
        """The record of a key that exists and is not revoked, else None."""
        return self.repository.verify_api_key(key)

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included (never the keys themselves)."""
        return self.repository.list_api_keys()


def _locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, round((until - now).total_seconds() / 60))
    return (
        f"too many failed sign-ins: this user is locked for {minutes} more minute(s); "
        "an admin can lift it with a password reset"
    )
