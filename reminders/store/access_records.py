"""Access records (API keys, staff users, sessions, the audit trail): plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reminders.roles import Role


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as staff see it: never the key itself, nor its hash."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    scope: Role = Role.STAFF


@dataclass(frozen=True)
class UserRecord:
    """A staff user as the access service sees it (the hash never leaves the service)."""

    id: int
    name: str
    role: Role
    password_hash: str
    failed_sign_ins: int
    locked_until: datetime | None
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    """A signed-in console session with its user."""

    id: int
    user_id: int
    user_name: str
    role: Role
    csrf_token: str
    last_seen_at: datetime
    ended_at: datetime | None
    user_disabled_at: datetime | None


@dataclass(frozen=True)
class NewAuditEntry:
    """One change to record: who, what, about which patient (external id), and details."""

    actor: str
    action: str
    external_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class AuditRecord:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    action: str
    external_id: str | None
    detail: str
