"""Live events across real processes: two ASGI servers, a WSGI server and a Redis of the
test's own, restarted in the middle."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.test import Client
from django.utils import timezone
from websockets.sync.client import ClientConnection, connect

from tests.factories import make_request
from tests.integration.conftest import (
    VENV_BIN,
    RedisServer,
    Services,
    free_port,
    port_open,
    redis_layer_config,
    subprocess_env,
    wait_until,
)
from workflows.models import OutboxEvent
from workflows.outbox import outbox_relay_drain

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The helper's own port for a Redis this test stops and starts (never the shared 6379).
PRIVATE_REDIS_PORT = 6398


@pytest.fixture
def private_redis(tmp_path: Path, settings: Any) -> Iterator[RedisServer]:
    """A Redis of this test's own, which this process's channel layer publishes to too."""
    assert not port_open(PRIVATE_REDIS_PORT), f"port {PRIVATE_REDIS_PORT} is taken"
    server = RedisServer(port=PRIVATE_REDIS_PORT, workdir=tmp_path)
    server.start()
    settings.CHANNEL_LAYERS = redis_layer_config(server.url, prefix="baton")
    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
    try:
        yield server
    finally:
        server.stop()
        if previous is not None:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)


def _serve(services: Services, name: str, argv: list[str], redis_url: str) -> int:
    port = free_port()
    env = subprocess_env(REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url, OUTBOX_RELAY_IN_ASGI="0")
    server = services.start(name, [arg.replace("{port}", str(port)) for arg in argv], env=env)
    wait_until(lambda: port_open(port) or not server.alive(), timeout=60, what=f"the {name} server")
    assert server.alive(), server.log()
    return port


UVICORN = [str(VENV_BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"]
GUNICORN = [str(VENV_BIN / "gunicorn"), "config.wsgi", "-b", "127.0.0.1:{port}", "-w", "1"]


class Listener:
    """A WebSocket client that keeps what a page keeps: the epoch and a cursor per stream."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        ready = self._next()
        assert ready["type"] == "ready", ready
        self.epoch: str = ready["epoch"]
        self.cursors: dict[str, int] = dict(ready["streams"])
        self.received: list[dict[str, Any]] = []

    def _next(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.socket.recv(timeout=timeout))
        return message

    def take(self, *, until: float) -> None:
        """Read events for `until` seconds, keeping each in order of arrival."""
        deadline = time.monotonic() + until
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._next(timeout=left)
            except TimeoutError:
                return
            if message["type"] == "event":
                self.received.append(message)
            elif message["type"] == "resync":
                self.epoch, self.cursors = message["epoch"], dict(message["streams"])

    def event_ids(self) -> set[str]:
        return {m["event"]["id"] for m in self.received}


def _approve_through_wsgi(*, port: int, session: str, request_id: int) -> None:
    """Approve as a browser would: read the page's form, post it back."""
    browser = requests.Session()
    browser.cookies.set("sessionid", session)
    base = f"http://127.0.0.1:{port}"
    page = browser.get(f"{base}/requests/{request_id}/", timeout=10)
    assert page.status_code == 200, page.text[:500]
    fields = dict(
        re.findall(r'name="(csrfmiddlewaretoken|version|idempotency_key)" value="([^"]*)"', page.text)
    )
    done = browser.post(
        f"{base}/requests/{request_id}/act/",
        data={**fields, "action": "approve", "comment": "ok"},
        timeout=10,
        allow_redirects=False,
    )
    assert done.status_code in (302, 303), done.text[:500]


def test_an_action_through_wsgi_reaches_asgi_b_and_a_redis_restart_loses_nothing(
    services: Services, private_redis: RedisServer, requester, request_type, approver, approver_group
):
    # given two ASGI servers and a WSGI server on the test's database and its own Redis
    asgi_a = _serve(services, "asgi-a", UVICORN, private_redis.url)
    asgi_b = _serve(services, "asgi-b", UVICORN, private_redis.url)
    wsgi = _serve(services, "wsgi", GUNICORN, private_redis.url)
    approver_session, requester_session = Client(), Client()
    approver_session.force_login(approver)
    requester_session.force_login(requester)
    approver_cookie = approver_session.cookies["sessionid"].value
    requester_cookie = requester_session.cookies["sessionid"].value
    group_stream = f"inbox.group.{approver_group.pk}"
    requester_stream = f"inbox.user.{requester.pk}"

    def open_socket(port: int, cookie: str) -> ClientConnection:
        return connect(
            f"ws://127.0.0.1:{port}/ws/inbox/",
            additional_headers={"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"},
            open_timeout=10,
        )

    with open_socket(asgi_b, approver_cookie) as on_b, open_socket(asgi_a, requester_cookie) as on_a:
        approver_on_b, requester_on_a = Listener(on_b), Listener(on_a)
        assert group_stream in approver_on_b.cursors
        first_epoch = approver_on_b.epoch
        start = approver_on_b.cursors[group_stream]  # a stream's numbers start where its life did
        # when two requests are submitted here, and the approver approves one through WSGI
        first = make_request(requester=requester, request_type=request_type, title="Desk")
        second = make_request(requester=requester, request_type=request_type, title="Chair")
        _approve_through_wsgi(port=wsgi, session=approver_cookie, request_id=first.pk)
        approver_on_b.take(until=3)
        requester_on_a.take(until=1)
        # then the approver's socket on ASGI B heard the submissions and the approval,
        # numbered on from the group stream's head at connect, in order
        on_group = [m for m in approver_on_b.received if m["stream"] == group_stream]
        assert [(m["seq"], m["event"]["action"]) for m in on_group] == [
            (start + 1, "submit"),
            (start + 2, "submit"),
            (start + 3, "approve"),
        ]
        assert on_group[2]["event"]["by"]["id"] == approver.pk
        # and the requester, on ASGI A, heard the approval of her request on her own stream
        assert ("approve", requester_stream) in {
            (m["event"]["action"], m["stream"]) for m in requester_on_a.received
        }

        # when Redis goes down, an approval is made through WSGI meanwhile, and Redis comes back empty
        private_redis.stop()
        _approve_through_wsgi(port=wsgi, session=approver_cookie, request_id=second.pk)
        private_redis.start()
        time.sleep(2)  # the ASGI servers' subscriptions reconnect
        # and the outbox relay delivers what could not be pushed
        OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).update(available_at=timezone.now())
        assert outbox_relay_drain().delivered >= 1
        approver_on_b.take(until=3)
        # then the approval reached the approver's socket, numbered in a new epoch
        after = [m for m in approver_on_b.received if m["epoch"] != first_epoch]
        assert after, "nothing arrived after the restart"
        assert {m["event"]["action"] for m in after} == {"approve"}
        # and a client that re-syncs with its old epoch is told to re-render in the new one
        on_b.send(json.dumps({"type": "sync", "epoch": first_epoch, "cursors": approver_on_b.cursors}))
        resync = json.loads(on_b.recv(timeout=10))
        assert resync["type"] == "resync"
        assert resync["epoch"] == after[0]["epoch"] != first_epoch
        # and, comparing what was sent with what was received: every channel event for the
        # approver's streams is delivered and was received, each stream's numbers without a gap
        streams = set(approver_on_b.cursors)
        sent = {
            str(pk)
            for pk in OutboxEvent.objects.filter(
                kind=OutboxEvent.Kind.CHANNEL, destination__in=streams
            ).values_list("pk", flat=True)
        }
        assert (
            not OutboxEvent.objects.filter(pk__in=sent).exclude(status=OutboxEvent.Status.DELIVERED).exists()
        )
        assert approver_on_b.event_ids() == sent
        for epoch in {m["epoch"] for m in approver_on_b.received}:
            for stream in streams:
                seqs = [
                    m["seq"] for m in approver_on_b.received if (m["epoch"], m["stream"]) == (epoch, stream)
                ]
                assert not seqs or seqs == list(range(seqs[0], seqs[0] + len(seqs))), (stream, seqs)
