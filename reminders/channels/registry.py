"""Chooses a channel for each kind of message from the settings: a provider, else the console."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from reminders.channels.base import Channel
from reminders.channels.console import ConsoleChannel
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.errors import SettingsError
from reminders.settings import Settings

log = logging.getLogger(__name__)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """{"sms": ..., "email": ...}: Twilio and SMTP when configured, the console otherwise.

    Refuses (SettingsError) to build real channels before the clinic's name and phone are set.
    """
    problems = settings.live_sending_problems()
    if problems:
        raise SettingsError(problems)
    return {"sms": _sms_channel(settings), "email": _email_channel(settings)}


def describe_channels(channels: Mapping[str, Channel]) -> str:
    """One line for the startup banner, e.g. "sms via console (...), email via SMTP host:587"."""
    return ", ".join(f"{kind} via {_describe(channel)}" for kind, channel in channels.items())


def _sms_channel(settings: Settings) -> Channel:
    if settings.twilio_account_sid and settings.twilio_auth_token:
        from reminders.channels.twilio_sms import TwilioSmsChannel

        channel: Channel = TwilioSmsChannel.from_settings(settings)
        return channel
    if settings.twilio_account_sid or settings.twilio_auth_token:
        log.warning(
            "Twilio needs both REMINDERS_TWILIO_ACCOUNT_SID and REMINDERS_TWILIO_AUTH_TOKEN; "
            "only one is set, so SMS go to the console"
        )
    return ConsoleChannel.from_settings(settings, "sms")


def _email_channel(settings: Settings) -> Channel:
    if settings.smtp_host:
        return SmtpEmailChannel.from_settings(settings)
    return ConsoleChannel.from_settings(settings, "email")


def _describe(channel: Channel) -> str:
    describe = getattr(channel, "describe", None)
    return str(describe()) if callable(describe) else type(channel).__name__
