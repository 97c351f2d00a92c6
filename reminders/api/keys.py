"""API key helpers for scripts and tests: create, revoke and list keys through the access
service (so each change is in the audit log).

A key is a random token shown once, when created; the database keeps only its SHA-256 and a
short prefix to tell keys apart.
"""

from __future__ import annotations

from reminders.access.actor import Actor
from reminders.app import App
from reminders.roles import Role
from reminders.store.access_records import ApiKeyRecord


def create_key(
    app: App, name: str, scope: Role = Role.STAFF, *, actor: Actor | None = None
) -> tuple[str, ApiKeyRecord]:
    """Create a key named `name`; returns the key (show it once) and its record."""
    return app.access().create_api_key(name, scope, actor or Actor.cli())


def revoke_key(app: App, prefix_or_id: str, *, actor: Actor | None = None) -> ApiKeyRecord:
    """Revoke a key by its id or its prefix (as `list_keys` shows); requests with it get 401."""
    return app.access().revoke_api_key(prefix_or_id, actor or Actor.cli())


def list_keys(app: App) -> list[ApiKeyRecord]:
    """Every key, revoked ones included (never the keys themselves)."""
    return app.access().api_keys()
