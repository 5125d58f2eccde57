"""The API's long-poll served by another ASGI process: a decision made here wakes the
waiter there within a second, through the outbox's push and the Redis channel layer."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest

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
