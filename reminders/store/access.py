"""Access: API keys, stored as their SHA-256 only (and staff users, later)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import or_, select

from reminders.errors import NotFoundError, ReminderError
from reminders.store.database import Database
from reminders.store.inbound_schema import ApiKey
from reminders.store.records import ApiKeyRecord

KEY_PREFIX = "rk_"
_DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_MAX_KEY_LENGTH = 256


def hash_key(key: str) -> str:
    """The stored form of an API key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _api_key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.prefix, row.created_at, row.revoked_at)


class AccessRepository:
    """Who may use the API."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_api_key(self, name: str, now: datetime) -> tuple[str, ApiKeyRecord]:
        """A new random key (returned once, stored hashed) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            name=name,
            key_hash=hash_key(key),
            prefix=key[:_DISPLAY_PREFIX_LENGTH],
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
