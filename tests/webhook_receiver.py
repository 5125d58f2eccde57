"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 (a random free port) in a
thread, verifying every request with the `standardwebhooks` package (an implementation
independent of Baton's), failing on purpose for the first N requests, and keeping count.

Also `webhook_tasks_run`, which plays the Celery worker in unit tests: it runs the
fan-out task of each committed step, then the delivery task once for each outbox task
event that was pushed or is due, as a worker would receive it from the broker.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db.models import Q
from django.test import TestCase
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from workflows.models import OutboxEvent
from workflows.webhooks.events import DELIVER_TASK, FANOUT_TASK
from workflows.webhooks.tasks import webhook_deliver_task, webhook_fanout_task


@dataclass
class Received:
    """One request as it arrived: its headers, body, which secrets verify it, the answer."""

    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    verified_by: list[int]
    answered: int
    path: str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers 500 to the first `fail_first` requests, then `status`; 401 to a request no
    secret in `secrets` verifies. `secrets` may be changed while it runs (a rotation)."""

    secrets: list[str]
    fail_first: int = 0
    status: int = 204
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/baton"

    def verify(self, body: bytes, headers: dict[str, str]) -> list[int]:
        """The indexes of the secrets whose signature is among the request's."""
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(index)
        return verified

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified = self.verify(body, headers)
        with self._lock:
            if not verified:
                answer = 401
            elif sum(1 for r in self.received if r.verified_by) < self.fail_first:
                answer = 500
            else:
                answer = self.status
            self.received.append(
                Received(
                    webhook_id=headers.get("webhook-id", ""),
                    timestamp=headers.get("webhook-timestamp", ""),
                    signature=headers.get("webhook-signature", ""),
                    body=body,
                    verified_by=verified,
                    answered=answer,
                    path=handler.path,
                )
            )
        handler.send_response(answer)
        reply = b"not yet" if answer == 500 else b"bad signature" if answer == 401 else b""
        handler.send_header("content-length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-receiver").start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.answered < 300]


_ran: set[Any] = set()


def webhook_fanouts_run() -> int:
    """Run the fan-out task of each step written to the outbox since the last call, once
    each, as a worker receives it (by the push after commit, or by the relay: either way
    every committed one arrives); how many deliveries they wrote."""
    written = 0
    for event in (
        OutboxEvent.objects.filter(destination=FANOUT_TASK).exclude(pk__in=_ran).order_by("created_at")
    ):
        _ran.add(event.pk)
        OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.DELIVERED)
        # The task commits on its own in a worker, and its deliveries' events are pushed
        # then; inside a test's transaction that push is run here.
        with TestCase.captureOnCommitCallbacks(execute=True):
            written += webhook_fanout_task(**event.payload["kwargs"])
    return written


def webhook_tasks_run(*, rounds: int = 20) -> list[str]:
    """Run the delivery task for each webhook task event pushed after commit or due in the
    outbox, once each, until none is left (at most `rounds` passes); the tasks' results.

    Pushed events went to the test's in-memory broker, where no worker reads; this is that
    worker. Due events are what the relay would send; they are marked delivered as it would.
    """
    results: list[str] = []
    for _ in range(rounds):
        webhook_fanouts_run()
        events = list(
            OutboxEvent.objects.filter(destination=DELIVER_TASK)
            .filter(
                Q(status=OutboxEvent.Status.DELIVERED)
                | Q(status=OutboxEvent.Status.PENDING, available_at__lte=timezone.now())
            )
            .exclude(pk__in=_ran)
            .order_by("created_at")
        )
        if not events:
            break
        for event in events:
            _ran.add(event.pk)
            OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.DELIVERED)
            results.append(webhook_deliver_task(**event.payload["kwargs"]))
    return results
