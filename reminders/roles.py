"""The three roles of staff users, also the scopes of API keys: the same words everywhere.

A vocabulary at the bottom of the layers: the access records carry it (parsed once where users,
sessions and keys are read), the access service checks it, the entry points show it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user or an API key may do; each role includes the ones before it."""

    VIEWER = "viewer"  # read only
    STAFF = "staff"  # enroll, reschedule, cancel, resolve flags, import CSV
    ADMIN = "admin"  # users, API keys, applying a plan change

    @property
    def rank(self) -> int:
        """Position in the order viewer < staff < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what `needed` guards."""
        return self.rank >= needed.rank


ROLE_NAMES = tuple(role.value for role in Role)


def parse_role(value: str) -> Role:
    """A role from its name, or ValueError naming the three there are."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown role {value!r}: expected one of {', '.join(ROLE_NAMES)}"
        ) from None
