"""Password hashing with Argon2id (argon2-cffi); a password is never stored or logged."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from reminders.access.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 1024


def check_new_password(password: str) -> None:
    """Refuse a password too short to resist guessing, or absurdly long."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")


class Passwords:
    """Hash and verify with one Argon2id configuration (memory cost from the settings)."""

    def __init__(self, memory_kib: int = 65536) -> None:
        self.hasher = PasswordHasher(memory_cost=memory_kib)
        self._dummy = self.hasher.hash("timing-equaliser-for-unknown-users")

    def hash(self, password: str) -> str:
        """The stored form of a password."""
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no user, spend the same time and say no."""
        if len(password) > MAX_LENGTH:
            return False
        try:
            return self.hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than today's."""
        return self.hasher.check_needs_rehash(stored_hash)
