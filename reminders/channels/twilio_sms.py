"""SMS through Twilio's Messages API with the official client, over one reused HTTP session."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
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
from urllib3.exceptions import NewConnectionError

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.errors import DeliveryError, FailureKind
from reminders.redact import mask_phone, redact_phones
from reminders.settings import Settings

log = logging.getLogger(__name__)

# What Twilio's error codes mean (https://www.twilio.com/docs/api/errors). The same codes come
# back from a failed create and, later, in a delivery report; `classify_twilio_code` reads both.
# 20429: too many requests; 21611: the sender's queue is full (Twilio asks to try again later).
RETRY_CODES = frozenset({20429, 21611})
# 21610: the recipient texted STOP to the carrier.
OPTED_OUT_CODES = frozenset({21610})
# 21211/21421: not a valid number; 21214/21217: cannot be reached/does not look valid; 21407/21614:
# not a number that takes SMS; 30005: unknown destination handset; 30006: landline.
INVALID_NUMBER_CODES = frozenset({21211, 21214, 21217, 21407, 21421, 21614, 30005, 30006})
# 20003: authentication; 20005: account not active; 21212: invalid From; 21606: From cannot send
# SMS; 21608: trial account, unverified To; 21659/21660: From not a Twilio number of this account;
# 21705: invalid messaging service. Nothing can go until staff fix the settings.
CONFIGURATION_CODES = frozenset({20003, 20005, 21212, 21606, 21608, 21659, 21660, 21705})
# Pages looked through to reconcile one message; a patient's number never has this many texts.
RECONCILE_PAGE_SIZE = 100
RECONCILE_MAX_PAGES = 5
# Twilio's clock and ours may differ a little; a message created this much before `since` counts.
CLOCK_SKEW = timedelta(minutes=5)


# What a delivery error means, in words staff read in the timeline.
_MEANINGS = {
    21211: "not a valid phone number",
    21610: "the patient unsubscribed at the carrier (texted STOP)",
    21614: "not a mobile number",
    30003: "the phone was unreachable (switched off or out of coverage)",
    30004: "the message was blocked by the recipient or the carrier",
    30005: "unknown number, or no longer in service",
    30006: "a landline, or a carrier that cannot take texts",
    30007: "filtered by the carrier (a sender-registration matter)",
    30008: "the carrier reported an unknown error",
}


def describe_twilio_code(code: int | str | None) -> str:
    """What a Twilio error code means, in a few words for staff."""
    if code is None or not str(code).isdigit():
        return "the carrier could not deliver it"
    return f"{_MEANINGS.get(int(code), 'the carrier could not deliver it')} ({code})"


def classify_twilio_code(code: int | str | None, http_status: int | None = None) -> FailureKind:
    """What a Twilio error means for the message: from its code (a failed create and a delivery
    report alike) and, for an API answer, its HTTP status.

    Only 429 and 21611 are safe to retry blind: Twilio documents that a create is not
    idempotent, and a 5xx may come after the message was created (its outcome is unknown).
    30003 (unreachable) and 30007 (carrier filtering) reject one message, not the number.
    """
    number = int(code) if isinstance(code, str) and code.isdigit() else code
    if number in OPTED_OUT_CODES:
        return FailureKind.OPTED_OUT
    if number in INVALID_NUMBER_CODES:
        return FailureKind.INVALID_NUMBER
    if number in CONFIGURATION_CODES or http_status in (401, 403):
        return FailureKind.CHANNEL_CONFIGURATION
    if number in RETRY_CODES or http_status == 429:
        return FailureKind.RETRY
    if http_status is not None and http_status >= 500:
        return FailureKind.UNKNOWN_OUTCOME
    return FailureKind.REJECTED


class _QuietHttpClient(TwilioHttpClient):
    """Twilio's HTTP client without its request log, whose URLs carry full phone numbers."""

    def log_request(self, kwargs: dict[str, Any]) -> None:
        pass

    def log_response(self, status_code: int, response: Any) -> None:
        pass


class TwilioSmsChannel(Channel):
    """Sends SMS with one Twilio client (and one keep-alive HTTP session) for every send."""

    group_outcomes = True  # find_sent looks back, so a crash costs a look-up, not a resend

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
            timeout=settings.twilio_timeout_seconds,
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
        """The receipt of a message with this number and body created since `since`.

        Lists by To only: Twilio's date filters use DateSent, which a message still in its
        queue does not have yet. Looks through at most RECONCILE_MAX_PAGES pages; beyond that
        the outcome stays unknown (DeliveryError) rather than risking a second text.
        A naive `since` is taken as UTC.
        """
        aware = (since if since.tzinfo else since.replace(tzinfo=UTC)) - CLOCK_SKEW
        try:
            page = self._messages.page(to=message.to, page_size=RECONCILE_PAGE_SIZE)
            for number in range(1, RECONCILE_MAX_PAGES + 1):
                for sent in page:
                    created = sent.date_created
                    if sent.body == message.body and (created is None or created >= aware):
                        return DeliveryReceipt(sent.sid, sent.status or "queued")
                if page.next_page_url is None:
                    return None
                if number < RECONCILE_MAX_PAGES:
                    page = page.next_page()
        except (TwilioException, requests.RequestException, ValueError) as exc:
            raise _delivery_error(exc, message.to) from exc
        raise DeliveryError(
            f"not found in the first {RECONCILE_MAX_PAGES} pages of messages to this number",
            code="reconcile_bound",
            kind=FailureKind.UNKNOWN_OUTCOME,
        )

    def check(self) -> None:
        """Fetch the account (texts nobody); raises DeliveryError when the credentials fail."""
        try:
            account = self._client.api.v2010.accounts(self._client.account_sid).fetch()
        except (TwilioException, requests.RequestException, ValueError) as exc:
            raise _delivery_error(exc, "") from exc
        if account.status not in (None, "active"):
            raise DeliveryError(
                f"the Twilio account is {account.status}",
                code="20005",
                kind=FailureKind.CHANNEL_CONFIGURATION,
            )

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        http_client = self._client.http_client
        if isinstance(http_client, TwilioHttpClient) and http_client.session is not None:
            http_client.session.close()


def _delivery_error(exc: Exception, to: str) -> DeliveryError:
    """Map a client failure to a DeliveryError classified by `classify_twilio_code`.

    No answer at all (timeout, reset, unreadable body) leaves the outcome unknown: Twilio may
    have created the message before the answer was lost.
    """
    unknown = FailureKind.UNKNOWN_OUTCOME
    if _never_connected(exc):
        return DeliveryError(
            f"cannot reach Twilio: {type(exc).__name__}", code="network", kind=FailureKind.RETRY
        )
    if isinstance(exc, requests.Timeout):
        return DeliveryError("Twilio did not answer in time", code="timeout", kind=unknown)
    if isinstance(exc, requests.RequestException):
        return DeliveryError(
            f"cannot reach Twilio: {type(exc).__name__}", code="network", kind=unknown
        )
    if isinstance(exc, ValueError):
        return DeliveryError("Twilio's answer is not JSON", code="bad_response", kind=unknown)
    status, code, text = _twilio_failure(exc)
    if not status:  # the client failed without an HTTP answer to blame
        return DeliveryError(_mask_phones(text, to), code="client_error", kind=unknown)
    return DeliveryError(
        _mask_phones(text, to) or f"Twilio answered HTTP {status}",
        code=str(code if code is not None else status),
        kind=classify_twilio_code(code, status),
        extra={"http_status": str(status), "meaning": describe_twilio_code(code)},
    )


def _never_connected(exc: Exception) -> bool:
    """Whether the request failed before a connection was made, so Twilio cannot have it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


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
    return redact_phones(text)


def status_callback_url(public_base_url: str) -> str | None:
    """Where Twilio should report delivery status, unless the service is only on loopback."""
    host = urlsplit(public_base_url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
        return None
    return public_base_url.rstrip("/") + "/twilio/status"
