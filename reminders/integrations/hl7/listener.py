"""The MLLP listener: python-hl7's asyncio server on its own thread, one ACK per message.

`reminders serve` starts it when REMINDERS_HL7_MLLP_PORT is set. Messages are handled one at a
time (on one worker thread, off the event loop), each answered on the connection it came on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from hl7.mllp import InvalidBlockError, start_hl7_server

from reminders.integrations.hl7.ack import reject_unparsed
from reminders.integrations.hl7.handler import Hl7Handler, decode

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 1_000_000


class MllpListener:
    """Accepts MLLP connections on host:port until stopped."""

    def __init__(self, handler: Hl7Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7")
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Bind and serve in the background; returns once the port is open (or raises)."""
        self._thread = threading.Thread(target=self._run, name="mllp-listener", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop accepting, close connections and wait for the message in progress."""
        loop = self._loop
        if loop is not None and self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=30)
        self._worker.shutdown(wait=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(self._open())
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _open(self) -> asyncio.Server:
        return await start_hl7_server(self._client, self.host, self.port, limit=MAX_MESSAGE_BYTES)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    block = await reader.readblock()  # type: ignore[attr-defined]
                except asyncio.IncompleteReadError:
                    return  # the sender closed the connection
                except (InvalidBlockError, ValueError) as exc:
                    reason = f"not an MLLP block: {exc}"
                    writer.writeblock(reject_unparsed("", reason).encode())  # type: ignore[attr-defined]
                    await writer.drain()
                    continue
                reply = await loop.run_in_executor(self._worker, self.handler.handle, decode(block))
                writer.writeblock(reply.ack.encode("utf-8"))  # type: ignore[attr-defined]
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        except Exception:  # one broken connection must not stop the listener
            log.exception("MLLP connection failed")
        finally:
            writer.close()
