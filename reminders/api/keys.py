"""API key management for the CLI (`reminders api-keys create/revoke/list`).

A key is a random token shown once, when created; the database keeps only its SHA-256 and a
short prefix to tell keys apart.
"""

from __future__ import annotations

from reminders.app import App
from reminders.clock import utc_now
from reminders.store.records import ApiKeyRecord


def create_key(app: App, name: str) -> tuple[str, ApiKeyRecord]:
    """Create a key named `name`; returns the key (show it once) and its record."""
    name = name.strip()
    if not name:
        raise ValueError("give the key a name, e.g. the system or person that will use it")
    return app.storage.access.create_api_key(name[:128], utc_now())


def revoke_key(app: App, prefix_or_id: str) -> ApiKeyRecord:
    """Revoke a key by its id or its prefix (as `list_keys` shows); requests with it get 401."""
    return app.storage.access.revoke_api_key(prefix_or_id, utc_now())


def list_keys(app: App) -> list[ApiKeyRecord]:
    """Every key, revoked ones included (never the keys themselves)."""
    return app.storage.access.list_api_keys()
