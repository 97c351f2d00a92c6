"""Build the feeds' services from the app (the mapping file is read and checked here)."""

from __future__ import annotations

from datetime import timedelta

from reminders.access.actor import Actor
from reminders.app import App
from reminders.integrations.hl7.handler import Hl7Handler
from reminders.integrations.hl7.listener import MllpListener
from reminders.integrations.mapping import load_mapping
from reminders.integrations.service import AppointmentService


def appointment_service(app: App) -> AppointmentService:
    """The appointment service over the app's enrollment service and the mapping file.

    Each sender (`hl7:<facility>`, `fhir:<key name>`) gets its own enrollment service.
    """
    plan_ids = app.catalog.ids()
    declared = {plan_id: app.catalog.get(plan_id).plan.attributes for plan_id in plan_ids}
    mapping = load_mapping(app.settings.scheduling_mapping, plan_ids, declared)
    return AppointmentService(
        lambda actor: app.enrollment(Actor.feed(actor)),
        app.storage,
        mapping,
        keep_raw=timedelta(days=app.settings.feed_raw_retention_days),
    )


def hl7_handler(app: App) -> Hl7Handler:
    """The HL7 message handler for file imports and the MLLP listener."""
    return Hl7Handler(appointment_service(app))


def start_mllp(app: App) -> MllpListener | None:
    """Start the MLLP listener when REMINDERS_HL7_MLLP_PORT is set (off by default)."""
    port = app.settings.hl7_mllp_port
    if port is None:
        return None
    listener = MllpListener(hl7_handler(app), app.settings.hl7_mllp_host, port)
    listener.start()
    return listener


def mllp_line(listener: MllpListener | None) -> str:
    """The service banner's line for the listener."""
    if listener is None:
        return "  hl7:      off (set REMINDERS_HL7_MLLP_PORT to listen for MLLP)"
    return f"  hl7:      MLLP on {listener.host}:{listener.port}"
