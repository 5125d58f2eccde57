"""Local receivers that count what Baton sent: an SMTP server (asyncio, no packages) and
an HTTP webhook endpoint that verifies each delivery with the `standardwebhooks` package.

Each runs in a thread of the process that starts it, on 127.0.0.1 and a free port, and
keeps every copy it received, so a reader counts by `Message-ID` / `webhook-id`: a copy
sent again after a crash shows up as a second copy under the same id.

`SmtpReceiver.hold()` keeps the answer to the end of a mail's DATA back (the mail is
already received) until `release()`: a sender killed meanwhile never learns that the mail
arrived, as a worker killed between sending and marking it sent.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class ReceivedMail:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str


@dataclass
class SmtpReceiver:
    """A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that accepts
    every mail and keeps it."""

    host: str = "127.0.0.1"
    received: list[ReceivedMail] = field(default_factory=list)
    _port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _held: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self._port

    def hold(self) -> None:
        """Receive mails but answer their DATA only after `release()`."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def copies(self) -> Counter[str]:
        """How many copies arrived of each Message-ID."""
        with self._lock:
            return Counter(m.message_id for m in self.received)

    def __enter__(self) -> SmtpReceiver:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(asyncio.start_server(self._session, self.host, 0))
            self._port = int(self._server.sockets[0].getsockname()[1])
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="smtp-receiver")
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def stop() -> None:
            server.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop)
        if self._thread is not None:
            self._thread.join(10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode("ascii") + b"\r\n")
            await writer.drain()

        sender, recipients = "", list[str]()
        try:
            await say("220 baton-bench SMTP ready")
            while line := await reader.readline():
                verb, _, rest = line.decode("utf-8", errors="replace").strip().partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    await say("250-baton-bench")
                    await say("250 8BITMIME")
                elif verb == "HELO":
                    await say("250 baton-bench")
                elif verb == "MAIL":
                    sender, recipients = rest.partition(":")[2].strip(" <>"), []
                    await say("250 OK")
                elif verb == "RCPT":
                    recipients.append(rest.partition(":")[2].strip(" <>"))
                    await say("250 OK")
                elif verb == "DATA":
                    await say("354 End data with <CR><LF>.<CR><LF>")
                    await self._data(reader, sender=sender, recipients=recipients)
                    while self._held.is_set():  # the mail is in; its sender does not know yet
                        await asyncio.sleep(0.05)
                    await say("250 OK: queued")
                elif verb in {"RSET", "NOOP"}:
                    sender, recipients = ("", []) if verb == "RSET" else (sender, recipients)
                    await say("250 OK")
                elif verb == "QUIT":
                    await say("221 Bye")
                    break
                else:
                    await say("502 Command not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a sender that died mid-session (the point of some tests)
        finally:
            writer.close()

    async def _data(self, reader: asyncio.StreamReader, *, sender: str, recipients: list[str]) -> None:
        lines: list[bytes] = []
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("the sender left in the middle of DATA")
            if line in {b".\r\n", b".\n"}:
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
        with self._lock:
            self.received.append(
                ReceivedMail(
                    message_id=str(message.get("Message-ID", "")).strip(),
                    sender=sender,
                    recipients=tuple(recipients),
                    subject=str(message.get("Subject", "")),
                )
            )


@dataclass
class WebhookCounter:
    """An HTTP endpoint that answers 204 to every delivery some secret in `secrets`
    verifies (401 otherwise) and keeps the webhook-id of each it accepted. `secrets` may
    grow while it runs (a subscription made after it started)."""

    secrets: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def copies(self) -> Counter[str]:
        with self._lock:
            return Counter(self.accepted)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified = False
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified = True
            break
        with self._lock:
            if verified:
                self.accepted.append(headers.get("webhook-id", ""))
            else:
                self.refused += 1
        handler.send_response(204 if verified else 401)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def __enter__(self) -> WebhookCounter:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-counter").start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
