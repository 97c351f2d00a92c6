"""Who made a change, as the audit log names them."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    """Through which door a change came."""

    USER = "user"  # a staff user signed in to the console
    API_KEY = "api_key"  # an HTTP API key, by its name
    CLI = "cli"  # the command line, by operating-system user or --as NAME
    SYSTEM = "system"  # the service itself (an inbound SMS, the dispatcher)
    FEED = "feed"  # a scheduling feed's sender, already named hl7:<facility> or fhir:<key>


@dataclass(frozen=True)
class Actor:
    """One person or system, named as the audit log shows it."""

    kind: ActorKind
    name: str

    def __str__(self) -> str:
        if self.kind in (ActorKind.USER, ActorKind.FEED):
            return self.name
        prefix = "key" if self.kind is ActorKind.API_KEY else self.kind.value
        return f"{prefix}:{self.name}"

    @classmethod
    def user(cls, name: str) -> Actor:
        """A signed-in console user."""
        return cls(ActorKind.USER, name)

    @classmethod
    def api_key(cls, name: str) -> Actor:
        """The holder of an API key, by the key's name."""
        return cls(ActorKind.API_KEY, name)

    @classmethod
    def cli(cls, as_name: str | None = None) -> Actor:
        """The command line: `--as NAME` when given, else the operating-system user."""
        name = (as_name or "").strip() or _os_user()
        return cls(ActorKind.CLI, name)

    @classmethod
    def feed(cls, sender: str) -> Actor:
        """A scheduling feed's sender (`hl7:<facility>`, `fhir:<key name>`)."""
        return cls(ActorKind.FEED, sender)

    @classmethod
    def system(cls, what: str) -> Actor:
        """The service acting on its own (e.g. an inbound SMS opting a patient back in)."""
        return cls(ActorKind.SYSTEM, what)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
