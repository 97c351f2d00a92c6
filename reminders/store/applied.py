"""Which plan versions active enrollments follow, with the digest each was applied with.

`plans check` compares plan files with this and must stay quick, so it reads it without
opening (or migrating) the database through the ORM: one SQL query, here. SQLAlchemy itself is
imported only once there is a database to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reminders.plans.versions import AppliedVersion

if TYPE_CHECKING:
    from sqlalchemy import Engine

ACTIVE = "active"  # EnrollmentStatus.ACTIVE, without importing the ORM schema
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
    sqlite_file = database_url.partition(":///")[2].split("?")[0]
    if database_url.startswith("sqlite") and not Path(sqlite_file).is_file():
        return []
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    url = make_url(database_url)
    connect_args = {}
    if url.get_backend_name() != "sqlite":
        connect_args["connect_timeout"] = 3
    engine = create_engine(url, connect_args=connect_args)
    try:
        return read_applied_versions(engine)
    except DBAPIError:
        return []
    finally:
        engine.dispose()
