"""SMS through Twilio's Messages API with the official client, over one reused HTTP session."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.base.version import Version
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage, mask_phone
from reminders.errors import DeliveryError
from reminders.settings import Settings

log = logging.getLogger(__name__)

# 21611: the sender's queue is full; Twilio answers 400 but asks to try again later.
_RETRYABLE_CODES = frozenset({21611})
_PHONE_IN_TEXT = re.compile(r"\+?\d{7,}")


class _QuietHttpClient(TwilioHttpClient):
    """Twilio's HTTP client without its request log, whose URLs carry full phone numbers."""

    def log_request(self, kwargs: dict[str, Any]) -> None:
        pass

    def log_response(self, status_code: int, response: Any) -> None:
        pass


class TwilioSmsChannel(Channel):
    """Sends SMS with one Twilio client (and one keep-alive HTTP session) for every send."""

    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("either from_number or messaging_service_sid is required")
        self._from = from_number
        self._service = messaging_service_sid
        self._status_callback = status_callback
        self._base_url = base_url
        self._client = Client(
            account_sid, auth_token, http_client=_QuietHttpClient(timeout=timeout)
        )
        if base_url:
            # Every request URL is built from the API domain's base_url, list pages included.
            self._client.api.base_url = base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION would rewrite the host name; not for a stand-in.
            self._client.edge = self._client.region = None
        self._messages = self._client.api.v2010.account.messages

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSmsChannel:
        """Build the channel from the twilio_* settings; the SID and token must be set."""
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("twilio_account_sid and twilio_auth_token must be set")
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_base_url,
            status_callback=status_callback_url(settings.public_base_url),
        )

    def describe(self) -> str:
        """One line for the startup banner (no credentials)."""
        sender = f"service {self._service}" if self._service else f"from {self._from}"
        host = f" via {self._base_url}" if self._base_url else ""
        return f"Twilio SMS {sender}{host}"

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Create one Message; raises DeliveryError carrying Twilio's error code."""
        try:
            sent = self._messages.create(
                to=message.to,
                body=message.body,
                from_=self._from,
                messaging_service_sid=self._service,
                status_callback=self._status_callback,
            )
        except (TwilioException, requests.RequestException, ValueError) as exc:
            error = _delivery_error(exc, message.to)
            log.warning(
                "sms outbox_id=%s to=%s failed: %s",
                message.outbox_id,
                mask_phone(message.to),
                error,
            )
            raise error from exc
        log.debug(
            "sms outbox_id=%s to=%s accepted as %s",
            message.outbox_id,
            mask_phone(message.to),
            sent.sid,
        )
        return DeliveryReceipt(sent.sid, sent.status or "queued")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> DeliveryReceipt | None:
        """The receipt of a message with this number and body sent since the UTC day of `since`.

        A naive `since` is taken as UTC; Twilio filters on days, and lists newest first.
        """
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        day = datetime.combine(aware.astimezone(UTC).date(), datetime.min.time())
        try:
            for sent in self._messages.stream(to=message.to, date_sent_after=day, page_size=100):
                if sent.body == message.body:
                    return DeliveryReceipt(sent.sid, sent.status or "queued")
        except (TwilioException, requests.RequestException, ValueError) as exc:
            raise _delivery_error(exc, message.to) from exc
        return None

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        http_client = self._client.http_client
        if isinstance(http_client, TwilioHttpClient) and http_client.session is not None:
            http_client.session.close()


def _delivery_error(exc: Exception, to: str) -> DeliveryError:
    """Map a client failure to a DeliveryError: 429, 5xx and network failures are retryable."""
    if isinstance(exc, requests.Timeout):
        return DeliveryError("Twilio did not answer in time", code="timeout", retryable=True)
    if isinstance(exc, requests.RequestException):
        return DeliveryError(
            f"cannot reach Twilio: {type(exc).__name__}", code="network", retryable=True
        )
    if isinstance(exc, ValueError):
        return DeliveryError("Twilio's answer is not JSON", code="bad_response", retryable=True)
    status, code, text = _twilio_failure(exc)
    if not status:  # the client failed without an HTTP answer to blame
        return DeliveryError(_mask_phones(text, to), code="client_error", retryable=True)
    retryable = status == 429 or status >= 500 or code in _RETRYABLE_CODES
    return DeliveryError(
        _mask_phones(text, to) or f"Twilio answered HTTP {status}",
        code=str(code if code is not None else status),
        retryable=retryable,
        extra={"http_status": str(status)},
    )


def _twilio_failure(exc: Exception) -> tuple[int, int | None, str]:
    """HTTP status, Twilio error code and message of a failed call (status 0: no answer)."""
    if not isinstance(exc, TwilioRestException | TwilioServiceException):
        # List pages raise a bare TwilioException("Unable to fetch page", response).
        response = next((arg for arg in exc.args if isinstance(arg, Response)), None)
        if response is not None:
            exc = Version.exception("GET", "", response, "Unable to fetch page")
    if isinstance(exc, TwilioRestException):
        return exc.status, exc.code, exc.msg
    if isinstance(exc, TwilioServiceException):
        return exc.status, exc.code, exc.detail or exc.title
    return 0, None, str(exc)


def _mask_phones(text: str, to: str) -> str:
    """Twilio's error messages quote the number, valid or not; keep only masked forms."""
    text = text.replace(to, mask_phone(to)) if to else text
    return _PHONE_IN_TEXT.sub(lambda match: mask_phone(match.group()), text)


def status_callback_url(public_base_url: str) -> str | None:
    """Where Twilio should report delivery status, unless the service is only on loopback."""
    host = urlsplit(public_base_url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
        return None
    return public_base_url.rstrip("/") + "/twilio/status"
