"""A real SMTP server on loopback (aiosmtpd) that records what it receives, for channel tests."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedEmail:
    """One message the server accepted; `peer` tells which client connection carried it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: tuple[str, int]

    def parsed(self) -> EmailMessage:
        """The received bytes parsed back, line ends stored as a mailbox would store them."""
        content = self.content.replace(b"\r\n", b"\n")
        return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(content))


@dataclass
class RecordingHandler:
    """Stores accepted messages and who said QUIT; answers `rcpt_replies[address]` or
    `data_reply` when set."""

    received: list[ReceivedEmail] = field(default_factory=list)
    quits: list[tuple[str, int]] = field(default_factory=list)  # the peers that said QUIT
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    logins: list[str] = field(default_factory=list)
    password: str = "secret"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        assert isinstance(envelope.original_content, bytes)
        self.received.append(
            ReceivedEmail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.original_content,
                peer=cast(tuple[str, int], session.peer),
            )
        )
        return "250 2.0.0 Ok: queued"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits.append(cast(tuple[str, int], session.peer))
        return "221 Bye"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd authenticator: any login with the right password."""
        if not isinstance(data, LoginPassword) or data.password.decode() != self.password:
            return AuthResult(success=False, handled=False)
        self.logins.append(data.login.decode())
        return AuthResult(success=True)


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, reporting each connection opened and lost to its server."""

    def __init__(self, server: SmtpTestServer, handler: RecordingHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._server._lost(self)


class _LoopbackController(Controller):
    """aiosmtpd's threaded controller, bound to a free port chosen by the OS."""

    def __init__(self, server: SmtpTestServer, **smtp_kwargs: Any) -> None:
        super().__init__(
            server.handler, hostname=HOST, port=0, server_hostname="localhost", **smtp_kwargs
        )
        self._server = server

    def factory(self) -> SMTP:
        return _TrackedSMTP(self._server, self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class SmtpTestServer:
    """Use as `with SmtpTestServer() as server:`; other kwargs go to aiosmtpd's SMTP class.

    With `with_auth`, AUTH is offered and accepts any login with `handler.password`.
    """

    def __init__(self, *, with_auth: bool = False, **smtp_kwargs: Any) -> None:
        self.handler = RecordingHandler()
        if with_auth:
            smtp_kwargs["authenticator"] = self.handler.authenticate
        self._controller = _LoopbackController(self, **smtp_kwargs)
        self._connections: set[SMTP] = set()
        self._changed = threading.Condition()

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def received(self) -> list[ReceivedEmail]:
        return self.handler.received

    def __enter__(self) -> SmtpTestServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._controller.stop()

    def drop_connections(self, timeout: float = 5.0) -> None:
        """Close every client connection from the server side, as an idle timeout would."""

        def close_all() -> None:
            for connection in list(self._connections):
                if connection.transport is not None:
                    connection.transport.close()

        self._controller.loop.call_soon_threadsafe(close_all)
        self.wait_for_no_connections(timeout)

    def wait_for_no_connections(self, timeout: float = 5.0) -> None:
        """Block until no client is connected (e.g. after the client said QUIT)."""
        with self._changed:
            if not self._changed.wait_for(lambda: not self._connections, timeout):
                raise TimeoutError(f"{len(self._connections)} SMTP connection(s) still open")

    def _opened(self, connection: SMTP) -> None:
        with self._changed:
            self._connections.add(connection)
            self._changed.notify_all()

    def _lost(self, connection: SMTP) -> None:
        with self._changed:
            self._connections.discard(connection)
            self._changed.notify_all()


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
