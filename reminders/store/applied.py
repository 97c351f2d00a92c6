"""Which plan versions active enrollments follow, with the digest each was applied with, and
the attributes their patients have.

`plans check` compares plan files with these and must stay quick, so it reads them without
opening (or migrating) the database through the ORM: one SQL query each, here. SQLAlchemy itself is
imported only once there is a database to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reminders.plans.versions import AppliedVersion, EnrolledAttributes
from reminders.store.records import EnrollmentStatus

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")


ACTIVE = EnrollmentStatus.ACTIVE.value  # the ORM schema is not imported here
ENROLLED_ATTRIBUTES = (
    "SELECT e.plan_id, p.external_id, p.attributes FROM enrollments e "
    "JOIN patients p ON p.id = e.patient_id WHERE e.status = :active ORDER BY p.external_id"
)
APPLIED_VERSIONS = (
    "SELECT plan_id, plan_version, plan_digest, COUNT(*) FROM enrollments "
    "WHERE status = :active GROUP BY plan_id, plan_version, plan_digest"
)


def read_applied_versions(engine: Engine) -> list[AppliedVersion]:
    """Every (plan, version, digest) that active enrollments follow, with how many do."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(text(APPLIED_VERSIONS), {"active": ACTIVE}).all()
    return [
        AppliedVersion(plan_id, version, digest, count) for plan_id, version, digest, count in rows
    ]


def applied_versions_at(database_url: str) -> list[AppliedVersion]:
    """As read_applied_versions; empty where there is no database yet, or it cannot be read
    (not reachable, or from before plan digests: `reminders db upgrade` adds them)."""
    return _read_at(database_url, read_applied_versions, [])


def read_enrolled_attributes(engine: Engine) -> list[EnrolledAttributes]:
    """The stored attributes of every patient actively enrolled, by plan."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(text(ENROLLED_ATTRIBUTES), {"active": ACTIVE}).all()
    return [
        EnrolledAttributes(plan_id, external_id, _json(attributes))
        for plan_id, external_id, attributes in rows
    ]


def enrolled_attributes_at(database_url: str) -> list[EnrolledAttributes]:
    """As read_enrolled_attributes; empty where there is no database (or it cannot be read)."""
    return _read_at(database_url, read_enrolled_attributes, [])


def _json(value: object) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    return loaded if isinstance(loaded, dict) else {}


def _read_at(database_url: str, read: Callable[[Engine], T], empty: T) -> T:
    sqlite_file = database_url.partition(":///")[2].split("?")[0]
    if database_url.startswith("sqlite") and not Path(sqlite_file).is_file():
        return empty
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    url = make_url(database_url)
    connect_args = {}
    if url.get_backend_name() != "sqlite":
        connect_args["connect_timeout"] = 3
    engine = create_engine(url, connect_args=connect_args, hide_parameters=True)
    try:
        return read(engine)
    except DBAPIError:
        return empty
    finally:
        engine.dispose()
