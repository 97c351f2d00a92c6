"""A loopback stand-in for Twilio's 2010-04-01 Messages API, for tests, benchmarks and demos.

It creates, lists and fetches Messages as Twilio does (JSON resources with RFC 2822 dates,
paging fields, Twilio's error bodies; `date_sent` stays null while a message is queued, and the
DateSent filters leave queued messages out), fetches the Account, checks basic auth, records
every exchange, and can be scripted to fail: an error instead of an answer, an error after the
message was created (Twilio documents that a 5xx may come after a create), an answer that comes
too late or never, a list that always offers a next page, or a random share of such faults.
`python -m reminders.testing.twilio_standin --port N` runs it in the foreground (see --help).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "standin-auth-token"

Json = dict[str, Any]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)\.json$")
_MESSAGE_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>\w+)\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_DATE_FILTERS = ("DateSent", "DateSent<", "DateSent>")
_CODE_FOR_STATUS = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


@dataclass(frozen=True)
class Exchange:
    """One request the stand-in received and its answer (status 0: closed unanswered).

    `client` is the peer address, so tests can tell which connection carried a request."""

    time: datetime
    client: str
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    response: bytes

    def response_json(self) -> Any:
        """The decoded response body, or None when none was sent."""
        return json.loads(self.response) if self.response else None


@dataclass(frozen=True)
class TwilioFailure:
    """An error answer as Twilio gives it; no message means Twilio's usual wording for the code."""

    status: int
    code: int
    message: str | None = None

    @classmethod
    def of(cls, status: int, code: int | None = None, message: str | None = None) -> TwilioFailure:
        """The failure with Twilio's code for `status` when no code is given."""
        return cls(
            status, code if code is not None else _CODE_FOR_STATUS.get(status, status), message
        )

    def answer(self, to: str = "", from_: str = "", path: str = "") -> tuple[int, Json]:
        """The HTTP status and JSON body Twilio sends, worded for this request."""
        text = self.message
        if text is None:
            text = _ERROR_TEXT.get(self.code, "Error").format(to=to, from_=from_, path=path)
        more_info = f"https://www.twilio.com/docs/errors/{self.code}"
        body = {"code": self.code, "message": text, "more_info": more_info}
        return self.status, {**body, "status": self.status}


class Fault(StrEnum):
    """A way the stand-in can misbehave on a create, as Twilio (or the network) may."""

    ACCEPT_THEN_500 = "500-after-create"  # the message is created, the answer is a 500
    THROTTLE = "429"  # nothing is created: 429 Too Many Requests
    SERVER_ERROR = "500"  # nothing is created: 500 (the client cannot tell it from the above)
    SLOW = "timeout"  # the message is created, the answer comes after `slow_seconds`
    LOST = "lost"  # the message is created, the connection closes unanswered


@dataclass
class _Stored:
    created_at: datetime
    resource: Json
    sent_at: datetime | None = None


class TwilioStandIn:
    """Twilio's Messages API on a loopback port; use as a context manager, or start()/stop().

    Date filters (DateSent, DateSent<, DateSent>) compare GMT days, inclusive, as Twilio
    documents; `clock` sets the time messages are stamped with.
    """

    def __init__(
        self,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_path: Path | str | None = None,
        clock: Callable[[], datetime] | None = None,
        fault_shares: dict[Fault, float] | None = None,
        seed: int | None = None,
        slow_seconds: float = 2.0,
        fault_log: Path | str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._address = (host, port)
        self._record_path = Path(record_path) if record_path else None
        self._clock = clock or (lambda: datetime.now(UTC))
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._expected_auth = f"Basic {credentials}"
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._stored: list[_Stored] = []
        self._by_sid: dict[str, _Stored] = {}
        self._next_failures: deque[TwilioFailure] = deque()
        self._responses_to_lose = 0
        self._recipient_failures: dict[str, TwilioFailure] = {}
        self._next_faults: deque[Fault] = deque()
        self._fault_shares = dict(fault_shares or {})
        self._random = random.Random(seed)
        self._slow_seconds = slow_seconds
        self._fault_log_path = Path(fault_log) if fault_log else None
        self._fault_log: TextIO | None = None
        self.faults_injected: dict[Fault, int] = dict.fromkeys(Fault, 0)
        self._hold_queued = False
        self._endless_pages = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._record_file: TextIO | None = None
        self._url: str | None = None

    def start(self) -> TwilioStandIn:
        """Listen and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        if self._record_path is not None:
            self._record_file = self._record_path.open("a", encoding="utf-8")
        if self._fault_log_path is not None:
            self._fault_log = self._fault_log_path.open("a", encoding="utf-8")
        self._server = _Server(self._address, self)
        self._url = f"http://{self._address[0]}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="twilio-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections, as a vanished server would."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for file in (self._record_file, self._fault_log):
                if file is not None:
                    file.close()
            self._record_file = self._fault_log = None

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the Twilio client, e.g. http://127.0.0.1:50123 (kept after stop)."""
        if self._url is None:
            raise RuntimeError("the stand-in has not been started")
        return self._url

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request received so far, oldest first, with the answer given."""
        with self._lock:
            return list(self._exchanges)

    @property
    def messages(self) -> list[Json]:
        """Every message accepted so far, oldest first, as a list or fetch returns it."""
        with self._lock:
            return [dict(stored.resource) for stored in self._stored]

    def fail_next(
        self, status: int, code: int | None = None, message: str | None = None, *, times: int = 1
    ) -> None:
        """Answer the next `times` authenticated API requests with this error instead."""
        failure = TwilioFailure.of(status, code, message)
        with self._lock:
            self._next_failures.extend([failure] * times)

    def lose_next_response(self, times: int = 1) -> None:
        """Accept the next message but close the connection unanswered, as a crash would."""
        with self._lock:
            self._responses_to_lose += times

    def fault_next(self, fault: Fault, *, times: int = 1) -> None:
        """Misbehave this way on the next `times` creates (e.g. create, then answer 500)."""
        with self._lock:
            self._next_faults.extend([fault] * times)

    def hold_queued(self, hold: bool = True) -> None:
        """Keep new messages queued (status "queued", no date_sent) until `release_queued`."""
        with self._lock:
            self._hold_queued = hold

    def release_queued(self) -> None:
        """Hand every queued message to the carrier now: status "sent", date_sent stamped."""
        now = self._now()
        with self._lock:
            for stored in self._stored:
                if stored.sent_at is None:
                    stored.sent_at = now
                    stamp = format_datetime(now)
                    stored.resource.update(status="sent", date_sent=stamp, date_updated=stamp)

    def endless_pages(self, endless: bool = True) -> None:
        """Make every list page offer a next page, as a misbehaving paginator might."""
        with self._lock:
            self._endless_pages = endless

    def fail_recipient(
        self, to: str, code: int = 21610, status: int = 400, message: str | None = None
    ) -> None:
        """Refuse every message to `to` with this error (21610: the recipient texted STOP)."""
        failure = TwilioFailure.of(status, code, message)
        with self._lock:
            self._recipient_failures[to] = failure

    def answer(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], auth: str | None
    ) -> tuple[int, Json] | None:
        """The status and JSON body Twilio would send, or None to close the connection."""
        one = _MESSAGE_PATH.match(path)
        account = _ACCOUNT_PATH.match(path)
        match = one or account or _MESSAGES_PATH.match(path)
        facts = {"to": form.get("To", ""), "from_": form.get("From", ""), "path": path}
        read_only = one or account
        if match is None or method not in ("GET", "POST") or (read_only and method != "GET"):
            return TwilioFailure.of(404).answer(**facts)
        if auth != self._expected_auth or match["account"] != self.account_sid:
            return TwilioFailure.of(401).answer(**facts)
        with self._lock:
            failure = self._next_failures.popleft() if self._next_failures else None
        if failure is not None:
            return failure.answer(**facts)
        if account is not None:
            return 200, self._account()
        if one is not None:
            return self._fetch(one["sid"], path)
        if method == "GET":
            return self._list(query)
        refusal = self._refusal(form)
        if refusal:
            return refusal.answer(**facts)
        fault = self._fault()
        if fault in (Fault.THROTTLE, Fault.SERVER_ERROR):
            return TwilioFailure.of(429 if fault is Fault.THROTTLE else 500).answer(**facts)
        created = self._create(form)
        if fault is Fault.ACCEPT_THEN_500:
            return TwilioFailure.of(500).answer(**facts)
        if fault is Fault.LOST:
            return None
        if fault is Fault.SLOW:
            time.sleep(self._slow_seconds)
        return created

    def _fault(self) -> Fault | None:
        """The fault to play on this create, if any, counted and logged."""
        with self._lock:
            fault = self._next_faults.popleft() if self._next_faults else None
            if fault is None:
                roll = self._random.random()
                for kind, share in self._fault_shares.items():
                    if roll < share:
                        fault = kind
                        break
                    roll -= share
            if fault is not None:
                self.faults_injected[fault] += 1
                if self._fault_log is not None:
                    self._fault_log.write(json.dumps({"fault": fault.value}) + "\n")
                    self._fault_log.flush()
        return fault

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC).replace(microsecond=0)

    def _account(self) -> Json:
        stamp = format_datetime(datetime(2020, 1, 1, tzinfo=UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}"
        return {
            "auth_token": self.auth_token,
            "date_created": stamp,
            "date_updated": stamp,
            "friendly_name": "Twilio stand-in",
            "owner_account_sid": self.account_sid,
            "sid": self.account_sid,
            "status": "active",
            "subresource_uris": {"messages": f"{uri}/Messages.json"},
            "type": "Full",
            "uri": f"{uri}.json",
        }

    def record(self, exchange: Exchange) -> None:
        """Keep one exchange; the HTTP handler calls this before it answers."""
        with self._lock:
            self._exchanges.append(exchange)

    def _create(self, form: dict[str, str]) -> tuple[int, Json] | None:
        now = self._now()
        stamp = format_datetime(now)
        sid = "SM" + uuid.uuid4().hex
        body = form.get("Body", "")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        resource: Json = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": stamp,
            "date_sent": None,  # set when the message leaves Twilio's queue
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }
        with self._lock:
            if self._hold_queued:
                stored = _Stored(now, dict(resource))
            else:  # later reads see the message handed to the carrier at once
                sent = {**resource, "status": "sent", "date_sent": stamp}
                stored = _Stored(now, sent, sent_at=now)
            self._stored.append(stored)
            self._by_sid[sid] = stored
            if self._record_file is not None:
                self._record_file.write(json.dumps(resource) + "\n")
                self._record_file.flush()
            if self._responses_to_lose:
                self._responses_to_lose -= 1
                return None
        return 201, resource

    def _refusal(self, form: dict[str, str]) -> TwilioFailure | None:
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return TwilioFailure.of(400, 21604)
        if not (sender or form.get("MessagingServiceSid")):
            return TwilioFailure.of(400, 21603)
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return TwilioFailure.of(400, 21602)
        if not _E164.match(to):
            return TwilioFailure.of(400, 21211)
        if len(form.get("Body", "")) > 1600:
            return TwilioFailure.of(400, 21617)
        with self._lock:
            return self._recipient_failures.get(to)

    def _fetch(self, sid: str, path: str) -> tuple[int, Json]:
        with self._lock:
            stored = self._by_sid.get(sid)
        if stored is None:
            return TwilioFailure.of(404).answer(path=path)
        return 200, dict(stored.resource)

    def _list(self, query: dict[str, str]) -> tuple[int, Json]:
        days: dict[str, date] = {}
        for name in _DATE_FILTERS:
            if name in query:
                try:
                    days[name] = _gmt_day(query[name])
                except ValueError:
                    text = f"Invalid value for {name}: {query[name]}"
                    return TwilioFailure(400, 20001, text).answer()
        try:
            size = min(max(int(query.get("PageSize", 50)), 1), 1000)
            page = max(int(query.get("Page", 0)), 0)
        except ValueError:
            return TwilioFailure(400, 20001, "Page and PageSize must be integers").answer()
        with self._lock:
            found = [s.resource for s in reversed(self._stored) if _matches(s, query, days)]
        start = page * size
        token = query.get("PageToken", "")
        after = next((i for i, r in enumerate(found) if "PA" + r["sid"] == token), None)
        if after is not None:
            start = after + 1
        items = found[start : start + size]
        filters = {k: v for k, v in query.items() if k in ("To", "From", *_DATE_FILTERS)}
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int, page_token: str | None = None) -> str:
            params: dict[str, Any] = {**filters, "PageSize": size, "Page": number}
            if page_token:
                params["PageToken"] = page_token
            return f"{base}?{urlencode(params)}"

        has_next = start + size < len(found) or self._endless_pages
        next_token = "PA" + items[-1]["sid"] if items else token or "PA"
        return 200, {
            "end": start + max(len(items) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": [dict(item) for item in items],
            "next_page_uri": page_uri(page + 1, next_token) if has_next else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page, token or None),
        }


def _matches(stored: _Stored, query: dict[str, str], days: dict[str, date]) -> bool:
    """Twilio's list filters; a message still queued has no DateSent, so date filters skip it."""
    resource = stored.resource
    if "To" in query and resource["to"] != query["To"]:
        return False
    if "From" in query and resource["from"] != query["From"]:
        return False
    if not days:
        return True
    if stored.sent_at is None:
        return False
    day = stored.sent_at.date()
    return (
        ("DateSent" not in days or day == days["DateSent"])
        and ("DateSent>" not in days or day >= days["DateSent>"])
        and ("DateSent<" not in days or day <= days["DateSent<"])
    )


def _gmt_day(value: str) -> date:
    """The GMT day of an ISO 8601 date or date-time, or an RFC 2822 date."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise ValueError(value) from None
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _segments(body: str) -> int:
    """SMS segments: 160 GSM-7 characters in one (153 when split), 70 UCS-2 (67 when split)."""
    single, part = (160, 153) if body.isascii() else (70, 67)
    if len(body) <= single:
        return 1 if body else 0
    return -(-len(body) // part)


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a call to the stand-in, records it, and answers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        standin = self.server.standin
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        auth = self.headers.get("Authorization")
        reply = standin.answer(self.command, url.path, query, form, auth)
        data = json.dumps(reply[1]).encode() if reply else b""
        exchange = Exchange(
            time=datetime.now(UTC),
            client="{}:{}".format(*self.client_address[:2]),
            method=self.command,
            path=url.path,
            query=query,
            form=form,
            headers=dict(self.headers.items()),
            body=body,
            status=reply[0] if reply else 0,
            response=data,
        )
        standin.record(exchange)
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply[0])
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: request lines carry phone numbers."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can drop its open keep-alive connections on stop."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: TwilioStandIn) -> None:
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (it timed out, or was killed) is no error of the stand-in."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _fault_shares(text: str) -> dict[Fault, float]:
    """ "500-after-create=0.1,429=0.05" -> {Fault.ACCEPT_THEN_500: 0.1, Fault.THROTTLE: 0.05}."""
    shares: dict[Fault, float] = {}
    for part in filter(None, text.split(",")):
        name, _, share = part.partition("=")
        shares[Fault(name.strip())] = float(share)
    return shares


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground, printing its URL, until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--account-sid", default=TEST_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=TEST_AUTH_TOKEN)
    parser.add_argument("--record", type=Path, help="append each accepted message as a JSON line")
    parser.add_argument(
        "--faults",
        type=_fault_shares,
        default={},
        help="share of creates to misbehave on, e.g. 500-after-create=0.1,429=0.1,timeout=0.05",
    )
    parser.add_argument(
        "--script", default="", help="faults for the next creates, in order, e.g. 500-after-create"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="delay of a timeout fault")
    parser.add_argument("--fault-log", type=Path, help="append each fault played as a JSON line")
    parser.add_argument("--hold-queued", action="store_true", help="keep messages queued")
    parser.add_argument("--endless-pages", action="store_true", help="always offer a next page")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    standin = TwilioStandIn(
        args.account_sid,
        args.auth_token,
        host=args.host,
        port=args.port,
        record_path=args.record,
        fault_shares=args.faults,
        seed=args.seed,
        slow_seconds=args.slow_seconds,
        fault_log=args.fault_log,
    )
    for name in filter(None, args.script.split(",")):
        standin.fault_next(Fault(name.strip()))
    standin.hold_queued(args.hold_queued)
    standin.endless_pages(args.endless_pages)
    with standin, suppress(KeyboardInterrupt):
        print(standin.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
