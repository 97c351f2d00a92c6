"""Access: API keys (stored as their SHA-256 only), staff users, their sessions, and the
append-only audit log."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, or_, select, update
from sqlalchemy.exc import IntegrityError

from reminders.errors import NotFoundError, ReminderError
from reminders.roles import Role
from reminders.store.access_records import (
    ApiKeyRecord,
    AuditRecord,
    NewAuditEntry,
    SessionRecord,
    UserRecord,
)
from reminders.store.access_schema import AuditEntry, StaffSession, StaffUser
from reminders.store.bulk import insert_rows
from reminders.store.database import Database
from reminders.store.inbound_schema import ApiKey

KEY_PREFIX = "rk_"
_DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_MAX_KEY_LENGTH = 256

AUDIT_LOG: Table = AuditEntry.__table__  # type: ignore[assignment]


def hash_key(key: str) -> str:
    """The stored form of an API key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _api_key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id, row.name, row.prefix, row.created_at, row.revoked_at, Role(row.scope)
    )


class DuplicateUser(ReminderError):
    """A user with that name exists already."""


def _user(row: StaffUser) -> UserRecord:
    return UserRecord(
        row.id,
        row.name,
        Role(row.role),
        row.password_hash,
        row.failed_sign_ins,
        row.locked_until,
        row.created_at,
        row.disabled_at,
    )


class AccessRepository:
    """Who may use the API and the console, and what they changed."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- API keys ---------------------------------------------------------------------------

    def create_api_key(self, name: str, scope: Role, now: datetime) -> tuple[str, ApiKeyRecord]:
        """A new random key with a scope (returned once, stored hashed) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            name=name,
            key_hash=hash_key(key),
            prefix=key[:_DISPLAY_PREFIX_LENGTH],
            scope=scope.value,
            created_at=now,
            revoked_at=None,
        )
        with self.database.session() as session:
            session.add(row)
            session.flush()
            return key, _api_key_record(row)

    def verify_api_key(self, key: str) -> ApiKeyRecord | None:
        """The record of a key that exists and is not revoked, else None."""
        if not key or len(key) > _MAX_KEY_LENGTH:
            return None
        with self.database.session() as session:
            row = session.scalar(
                select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )
            return _api_key_record(row) if row else None

    def revoke_api_key(self, prefix_or_id: str, now: datetime) -> ApiKeyRecord:
        """Revoke one key, named by its id, its display prefix or the key itself."""
        wanted = prefix_or_id.strip()
        with self.database.session() as session:
            query = select(ApiKey)
            if wanted.isdigit():
                query = query.where(ApiKey.id == int(wanted))
            else:
                query = query.where(
                    or_(ApiKey.prefix == wanted, ApiKey.key_hash == hash_key(wanted))
                )
            rows = list(session.scalars(query))
            if not rows:
                raise NotFoundError(f"no API key '{wanted}'")
            if len(rows) > 1:
                ids = ", ".join(str(r.id) for r in rows)
                raise ReminderError(f"'{wanted}' names several API keys (ids {ids}); use the id")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = now
            return _api_key_record(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        with self.database.session() as session:
            return [_api_key_record(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str, now: datetime) -> UserRecord:
        """A new user; DuplicateUser when the name is taken."""
        row = StaffUser(
            name=name,
            role=role.value,
            password_hash=password_hash,
            failed_sign_ins=0,
            created_at=now,
            password_changed_at=now,
        )
        try:
            with self.database.session() as session:
                session.add(row)
                session.flush()
                return _user(row)
        except IntegrityError:
            raise DuplicateUser(f"a user named '{name}' exists already") from None

    def user(self, name: str) -> UserRecord | None:
        """The user with this name, or None."""
        with self.database.session() as session:
            row = session.scalar(select(StaffUser).where(StaffUser.name == name))
            return _user(row) if row else None

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self.database.session() as session:
            return [_user(r) for r in session.scalars(select(StaffUser).order_by(StaffUser.name))]

    def set_password(self, user_id: int, password_hash: str, now: datetime) -> None:
        """A new password hash; clears failed sign-ins and any lockout."""
        self._update_user(
            user_id,
            password_hash=password_hash,
            password_changed_at=now,
            failed_sign_ins=0,
            locked_until=None,
        )

    def disable(self, user_id: int, now: datetime) -> None:
        """Refuse the user's sign-ins from now on and end their sessions."""
        with self.database.session() as session:
            session.execute(
                update(StaffUser)
                .where(StaffUser.id == user_id, StaffUser.disabled_at.is_(None))
                .values(disabled_at=now)
            )
            session.execute(
                update(StaffSession)
                .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
                .values(ended_at=now)
            )

    def record_failed_sign_in(
        self, user_id: int, now: datetime, lock_after: int, lock_for: timedelta
    ) -> UserRecord:
        """Count a failed sign-in; the `lock_after`-th in a row locks the user for `lock_for`."""
        with self.database.session() as session:
            row = session.get(StaffUser, user_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no user {user_id}")
            row.failed_sign_ins += 1
            if row.failed_sign_ins >= lock_after:
                row.locked_until = now + lock_for
                row.failed_sign_ins = 0
            return _user(row)

    def clear_failed_sign_ins(self, user_id: int) -> None:
        """A successful sign-in starts the count again."""
        self._update_user(user_id, failed_sign_ins=0, locked_until=None)

    def _update_user(self, user_id: int, **values: object) -> None:
        with self.database.session() as session:
            session.execute(update(StaffUser).where(StaffUser.id == user_id).values(**values))

    # -- sessions ---------------------------------------------------------------------------

    def add_session(self, user_id: int, token_hash: str, csrf_token: str, now: datetime) -> None:
        """Record a new signed-in session."""
        with self.database.session() as session:
            session.add(
                StaffSession(
                    token_hash=token_hash,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                )
            )

    def session(self, token_hash: str) -> SessionRecord | None:
        """The session with this token hash and its user, or None."""
        query = (
            select(
                StaffSession.id,
                StaffSession.user_id,
                StaffUser.name,
                StaffUser.role,
                StaffSession.csrf_token,
                StaffSession.last_seen_at,
                StaffSession.ended_at,
                StaffUser.disabled_at,
            )
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.token_hash == token_hash)
        )
        with self.database.session() as session:
            row = session.execute(query).one_or_none()
        if row is None:
            return None
        session_id, user_id, name, role, csrf_token, seen, ended, disabled = row
        return SessionRecord(
            session_id, user_id, name, Role(role), csrf_token, seen, ended, disabled
        )

    def touch_session(self, session_id: int, now: datetime) -> None:
        """The session was used now (the inactivity timeout counts from here)."""
        with self.database.session() as session:
            session.execute(
                update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=now)
            )

    def end_session(self, session_id: int, now: datetime) -> None:
        """Sign out (or time out) one session."""
        with self.database.session() as session:
            session.execute(
                update(StaffSession)
                .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
                .values(ended_at=now)
            )

    # -- audit log --------------------------------------------------------------------------

    def append_audit(self, entries: Sequence[NewAuditEntry], now: datetime) -> None:
        """Record changes; the database refuses to update or delete them afterwards."""
        if not entries:
            return
        rows = [
            {
                "at": now,
                "actor": e.actor[:160],
                "action": e.action[:64],
                "external_id": e.external_id,
                "detail": e.detail,
            }
            for e in entries
        ]
        with self.database.session() as session:
            insert_rows(session, AUDIT_LOG, rows)

    def audit_entries(
        self,
        *,
        limit: int = 100,
        before_id: int | None = None,
        external_id: str | None = None,
        actor: str | None = None,
    ) -> list[AuditRecord]:
        """Recorded changes, newest first, a page at a time (keyset on the id)."""
        query = select(
            AuditEntry.id,
            AuditEntry.at,
            AuditEntry.actor,
            AuditEntry.action,
            AuditEntry.external_id,
            AuditEntry.detail,
        )
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        if external_id:
            query = query.where(AuditEntry.external_id == external_id)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        query = query.order_by(AuditEntry.id.desc()).limit(limit)
        with self.database.session() as session:
            return [AuditRecord(*row) for row in session.execute(query)]
