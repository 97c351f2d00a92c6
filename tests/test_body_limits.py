"""Request bodies are bounded while read: 413 before parsing or the signature check, and the
server's memory stays flat whatever size or framing (declared or chunked) a client sends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_fixtures import AUTH_TOKEN, PUBLIC_URL, write_plan
from fastapi.testclient import TestClient

from reminders.api.app import create_app
from reminders.api.body_limit import MAX_API_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES
from reminders.app import App
from reminders.settings import Settings

SENT_BYTES = 200 * 1024 * 1024
CHUNK = b"x" * 65536


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    plans, templates = write_plan(tmp_path)
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        plans_dir=plans,
        templates_dir=templates,
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC_URL,
    )
    app = App.from_settings(settings)
    with TestClient(create_app(app)) as test_client:
        yield test_client
    app.close()


def chunked(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK) + 1):
        yield CHUNK


def test_a_chunked_webhook_body_over_64_kb_is_413_before_its_signature_is_checked(
    client: TestClient,
) -> None:
    response = client.post(
        "/twilio/inbound",
        content=chunked(MAX_WEBHOOK_BODY_BYTES * 4),
        headers={"X-Twilio-Signature": "anything", "Content-Type": "text/plain"},
    )

    assert response.status_code == 413
    assert response.json()["message"] == "the request body is over 65,536 bytes"


def test_a_declared_api_body_over_the_limit_is_413_before_the_key_is_checked(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/enrollments", content=b"{" * (MAX_API_BODY_BYTES + 1), headers={"X-API-Key": "x"}
    )

    assert response.status_code == 413
    assert response.json() == {
        "error": "request_entity_too_large",
        "message": "the request body is over 1,000,000 bytes",
        "fields": [],
    }


def test_a_body_within_the_limit_reaches_the_app(client: TestClient) -> None:
    response = client.post("/twilio/inbound", content=b"From=%2B12025550143&Body=hi")

    assert response.status_code == 403  # read, then refused for its missing signature


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _send_oversized(port: int, path: str, headers: str) -> bytes:
    """Stream up to SENT_BYTES in chunks until the server answers; return its status line."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
            f"{headers}\r\n".encode()
        )
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        sock.settimeout(0)
        answer = b""
        try:
            for _ in range(SENT_BYTES // len(CHUNK)):
                with contextlib.suppress(BlockingIOError):
                    answer += sock.recv(4096)
                if answer:
                    break
                sock.settimeout(5)
                sock.sendall(frame)
                sock.settimeout(0)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        while b"\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.slow
def test_oversized_bodies_keep_the_servers_peak_memory_within_a_few_mb_of_idle(
    tmp_path: Path,
) -> None:
    plans, templates = write_plan(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REMINDERS_PLANS_DIR": str(plans),
        "REMINDERS_TEMPLATES_DIR": str(templates),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "REMINDERS_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "reminders.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/twilio/inbound", content=b"a=b")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        idle = _peak_rss_kb(process.pid)

        statuses = [
            _send_oversized(port, "/twilio/inbound", "X-Twilio-Signature: forged\r\n"),
            _send_oversized(port, "/v1/enrollments", "X-API-Key: forged\r\n"),
        ]
        peak = _peak_rss_kb(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

    assert statuses == [b"HTTP/1.1 413 Request Entity Too Large"] * 2
    assert peak - idle < 8 * 1024, f"peak RSS grew by {peak - idle} KiB"
