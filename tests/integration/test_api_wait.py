"""The API's long-poll served by another ASGI process: a decision made here wakes the
waiter there within a second, through the outbox's push and the Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from django.db import connection

from accounts.tokens import api_token_create
from approvals.services import request_act
from tests.factories import make_request
from tests.integration.conftest import VENV_BIN, Services, free_port, port_open, subprocess_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_decision_wakes_a_waiter_in_another_process_within_a_second(
    services: Services, requester: Any, request_type: Any, approver: Any
) -> None:
    # given an ASGI server in another process on the same database and Redis
    port = free_port()
    server = services.start(
        "asgi",
        [str(VENV_BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        env=subprocess_env(OUTBOX_RELAY_IN_ASGI="0"),
    )
    wait_until(lambda: port_open(port) or not server.alive(), timeout=60, what="the ASGI server")
    assert server.alive(), server.log()
    # and a pipeline waiting there for the decision on its request
    request = make_request(requester=requester, request_type=request_type)
    secret = api_token_create(owner=requester, name="pipeline").secret
    answer: dict[str, Any] = {}

    def wait() -> None:
        call = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/requests/{request.pk}/wait/?seconds=30",
            headers={
                "Authorization": f"Bearer {secret}",
                "If-None-Match": f'"{request.pk}-v{request.version}"',
            },
        )
        with urllib.request.urlopen(call, timeout=40) as response:
            answer["status"] = response.status
            answer["body"] = json.loads(response.read())
            answer["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.5)  # the waiter is subscribed and waiting
    assert waiter.is_alive(), "the waiter answered before anything changed"

    # when the approver approves it here
    decided_at = time.monotonic()
    request_act(request_id=request.pk, action="approve", actor=approver, comment="ok")
    waiter.join(timeout=10)

    # then the waiter is answered with the decision within a second
    assert answer["status"] == 200
    assert answer["body"]["state"] == "approved"
    assert answer["at"] - decided_at < 1.0, f"answered after {answer['at'] - decided_at:.2f} s"


WAITERS = 200


async def _waiters(port: int, path: str, headers: str, count: int) -> list[tuple[float, bytes]]:
    """`count` long-polls held open at once; each answer's arrival time and status line."""

    async def one() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        arrived = time.monotonic()
        await reader.read()
        writer.close()
        return arrived, status

    return await asyncio.gather(*(one() for _ in range(count)))


def _connections_to(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return int(cursor.fetchone()[0])


def test_two_hundred_waiters_hold_no_database_connections_and_all_hear_the_decision(
    services: Services, requester: Any, request_type: Any, approver: Any
) -> None:
    # given an ASGI server in another process
    port = free_port()
    server = services.start(
        "asgi",
        [str(VENV_BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        env=subprocess_env(OUTBOX_RELAY_IN_ASGI="0"),
    )
    wait_until(lambda: port_open(port) or not server.alive(), timeout=60, what="the ASGI server")
    request = make_request(requester=requester, request_type=request_type)
    secret = api_token_create(owner=requester, name="many waiters").secret
    headers = f'Authorization: Bearer {secret}\r\nIf-None-Match: "{request.pk}-v{request.version}"\r\n'
    path = f"/api/v1/requests/{request.pk}/wait/?seconds=30"
    answers: list[tuple[float, bytes]] = []
    runner = threading.Thread(
        target=lambda: answers.extend(asyncio.run(_waiters(port, path, headers, WAITERS))), daemon=True
    )
    database = str(connection.settings_dict["NAME"])
    before = _connections_to(database)

    # when 200 clients wait at once
    runner.start()
    # then, once each has read the request, the waiting costs no database connection: each
    # read gave its connection back (a loaded machine takes a few seconds for 200 first reads)
    counts: list[int] = []

    def settled() -> bool:
        counts.append(_connections_to(database) - before)
        return counts[-1] <= 2

    wait_until(
        settled, timeout=25, what=f"the waiters' connections to close (held: {counts[-3:]})", interval=0.5
    )
    assert runner.is_alive(), "the waiters were answered before anything changed"

    # and when the approver decides, every waiter hears it within a second
    decided_at = time.monotonic()
    request_act(request_id=request.pk, action="approve", actor=approver, comment="ok")
    runner.join(timeout=20)
    assert len(answers) == WAITERS
    assert {status.split()[1] for _, status in answers} == {b"200"}
    latencies = sorted(arrived - decided_at for arrived, _ in answers)
    slowest = latencies[-1]
    assert slowest < 1.0, f"the last waiter heard it after {slowest:.2f} s"
