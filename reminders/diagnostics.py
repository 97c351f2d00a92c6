"""What `reminders doctor`, the startup banner and `/health` check: the database, the plans and
each channel's settings, without texting or emailing anyone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.errors import DeliveryError, ReminderError
from reminders.store import migrate
from reminders.store.database import make_engine, ping


@dataclass(frozen=True)
class Check:
    """One thing checked: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str
    error: DeliveryError | None = None


def check_database(engine: Engine) -> Check:
    """Whether the database answers."""
    try:
        ping(engine)
    except (SQLAlchemyError, OSError) as exc:
        return Check("database", False, f"does not answer ({type(exc).__name__})")
    return Check("database", True, f"answers ({engine.dialect.name})")


def check_database_url(url: str) -> Check:
    """Whether the database at `url` answers and its schema is current (nothing is changed)."""
    engine = make_engine(url)
    try:
        answer = check_database(engine)
        if not answer.ok:
            return answer
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
    finally:
        engine.dispose()
    if current != head:
        detail = f"{answer.detail}; schema at {current or 'nothing'}, {head} expected"
        return Check("database", False, detail + " (run `reminders db upgrade`)")
    return Check("database", True, f"{answer.detail}; schema at {current}")


def check_plans(catalog: PlanCatalog) -> Check:
    """Whether every plan file and template passes the plan check."""
    try:
        catalog.reload()
        ids = catalog.ids()
        versions = [f"{plan_id} v{catalog.get(plan_id).plan.version}" for plan_id in ids]
    except ReminderError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check("plans", False, first)
    if not ids:
        return Check("plans", False, f"no plan files in {catalog.plans_dir}")
    return Check("plans", True, ", ".join(versions))


def check_channel(name: str, channel: Channel) -> Check:
    """Whether a channel's provider accepts its settings (Twilio: fetch the account; SMTP:
    connect, STARTTLS, log in, NOOP); nothing is sent."""
    described = getattr(channel, "describe", None)
    label = str(described()) if callable(described) else type(channel).__name__
    try:
        channel.check()
    except DeliveryError as exc:
        return Check(name, False, f"{label}: {exc}", exc)
    return Check(name, True, label)


def check_channels(channels: Mapping[str, Channel]) -> list[Check]:
    """`check_channel` for each channel, by name."""
    return [check_channel(name, channels[name]) for name in sorted(channels)]
