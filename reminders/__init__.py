"""Recovery-plan reminders for clinics: plans, schedules, dispatch and replies."""

__version__ = "0.1.0"
