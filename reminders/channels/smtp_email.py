"""Email through an SMTP server with the standard library, over one reused connection."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

from reminders.channels.base import Channel, DeliveryReceipt, OutgoingMessage
from reminders.errors import DeliveryError, FailureKind
from reminders.redact import mask_email, redact_emails
from reminders.settings import Settings

log = logging.getLogger(__name__)


def message_id_for(message: OutgoingMessage, from_address: str) -> str:
    """The Message-ID of an outbox message: the same on every attempt, so a resent copy is
    dropped, and built from the message's random uid, so no other database repeats it."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
    return f"<reminder-{message.uid or message.outbox_id}@{domain}>"


class SmtpEmailChannel(Channel):
    """Sends email through one SMTP server, keeping the connection open between sends."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        from_address: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._from = from_address
        self._envelope_from = parseaddr(from_address)[1] or from_address
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmailChannel:
        """Build the channel from the smtp_* settings; smtp_host must be set."""
        if not settings.smtp_host:
            raise ValueError("smtp_host is not set")
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            from_address=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )

    def describe(self) -> str:
        """One line for the startup banner (no credentials)."""
        tls = " with STARTTLS" if self._starttls else ""
        return f"SMTP {self._host}:{self._port}{tls}"

    def build_email(self, message: OutgoingMessage) -> EmailMessage:
        """The MIME message: plain text, plus an HTML alternative when there is one."""
        email = EmailMessage()
        email["From"] = self._from
        email["To"] = message.to
        if message.subject is not None:
            email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=True)
        email["Message-ID"] = message_id_for(message, self._from)
        email.set_content(message.body)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Send one email; raises DeliveryError with the SMTP reply code when refused."""
        recipients = [address for _, address in getaddresses([message.to]) if address]
        if not recipients:
            raise DeliveryError("no email address to send to")
        try:
            email = self.build_email(message)
        except ValueError as exc:
            raise DeliveryError(f"cannot build the email: {exc}") from exc
        with self._lock:
            refused = self._send_locked(email, recipients)
        message_id = str(email["Message-ID"])
        if refused:  # the others have it: sending again would duplicate it for them
            log.warning(
                "email outbox_id=%s accepted for some recipients only; refused: %s",
                message.outbox_id,
                ", ".join(f"{mask_email(a)} ({code})" for a, (code, _) in refused.items()),
            )
            return DeliveryReceipt(provider_message_id=message_id, provider_status="partial")
        masked = ", ".join(mask_email(address) for address in recipients)
        log.info("email sent outbox_id=%s to=%s", message.outbox_id, masked)
        return DeliveryReceipt(provider_message_id=message_id)

    def close(self) -> None:
        """Say QUIT to the server, if connected."""
        with self._lock:
            self._disconnect(polite=True)

    def _send_locked(
        self, email: EmailMessage, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        try:
            smtp = self._connection()
            return smtp.send_message(email, from_addr=self._envelope_from, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused_recipients_error(exc.recipients) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421 or self._smtp is None or self._smtp.sock is None:
                self._disconnect(polite=False)
            raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._disconnect(polite=False)
            raise DeliveryError(f"SMTP connection lost: {exc}", kind=FailureKind.RETRY) from exc
        except smtplib.SMTPException as exc:
            self._disconnect(polite=False)
            raise DeliveryError(f"SMTP error: {exc}") from exc
        except OSError as exc:  # refused, reset, timed out, DNS
            self._disconnect(polite=False)
            raise DeliveryError(
                f"cannot reach SMTP server {self._host}:{self._port}: {exc}",
                kind=FailureKind.RETRY,
            ) from exc

    def check(self) -> None:
        """Connect, STARTTLS, log in and NOOP on a fresh connection; sends nothing."""
        with self._lock:
            try:
                smtp = self._connect()
            except OSError as exc:
                raise DeliveryError(
                    f"cannot reach SMTP server {self._host}:{self._port}: {exc}",
                    kind=FailureKind.RETRY,
                ) from exc
            try:
                code, reply = smtp.noop()
                if code != 250:
                    raise _reply_error(code, reply)
                smtp.quit()
            except (smtplib.SMTPException, OSError) as exc:
                raise DeliveryError(f"SMTP error: {exc}", kind=FailureKind.RETRY) from exc
            finally:
                smtp.close()

    def _connection(self) -> smtplib.SMTP:
        """The open connection if the server still answers, else a new one."""
        if self._smtp is not None:
            if _answers_noop(self._smtp):
                return self._smtp
            self._disconnect(polite=False)
        self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        """A new connection, secured and logged in as configured.

        A server that does not offer STARTTLS or AUTH, a certificate that does not verify and
        a refused login are the channel's configuration errors: no message can go until staff
        fix the settings, so they stop the channel instead of failing messages.
        """
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._starttls:
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
        except (smtplib.SMTPException, ssl.SSLError) as exc:
            smtp.close()
            raise _configuration_error(exc) from exc
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _disconnect(self, *, polite: bool) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if polite:
                smtp.quit()
        except OSError:
            pass
        finally:
            smtp.close()


def _answers_noop(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except OSError:  # SMTPServerDisconnected and socket errors alike
        return False


def _configuration_error(exc: smtplib.SMTPException | ssl.SSLError) -> DeliveryError:
    """What went wrong while securing the connection or logging in, for staff to fix."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        what = "the SMTP server refused the login"
    elif isinstance(exc, ssl.SSLError):
        what = "the SMTP server's TLS certificate or handshake failed"
    else:
        what = "the SMTP server does not support what the settings ask for"
    return DeliveryError(
        f"{what}: {_mask_addresses(str(exc))}",
        code=str(code) if code else None,
        kind=FailureKind.CHANNEL_CONFIGURATION,
    )


def _reply_error(code: int, reply: bytes | str) -> DeliveryError:
    """4xx replies are temporary (retry); anything else the server refused is permanent."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return DeliveryError(
        f"SMTP server refused the message: {_mask_addresses(text)}",
        code=str(code),
        kind=FailureKind.RETRY if 400 <= code < 500 else FailureKind.REJECTED,
    )


def _refused_recipients_error(refused: dict[str, tuple[int, bytes]]) -> DeliveryError:
    """Every recipient was refused: retryable if any refusal was temporary."""
    replies = list(refused.values())
    temporary = [reply for reply in replies if 400 <= reply[0] < 500]
    error = _reply_error(*(temporary or replies)[0])
    error.extra.update({mask_email(address): str(code) for address, (code, _) in refused.items()})
    return error


def _mask_addresses(text: str) -> str:
    """Server replies often quote the address; keep it out of logs and stored errors."""
    return redact_emails(text)
