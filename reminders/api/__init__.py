"""The HTTP API for staff and the Twilio webhooks; `reminders.api.app.create_app` builds it."""
