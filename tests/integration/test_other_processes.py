"""Events crossing process boundaries: a real Celery worker, and a WebSocket served by
another ASGI process, both on the test's PostgreSQL database and Redis."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.test import Client
from django.utils import timezone
from websockets.sync.client import connect

from approvals.models import Notification
from approvals.services import request_act
from tests.factories import make_request
from tests.integration.conftest import (
    CELERY_WORKER,
    VENV_BIN,
    Services,
    free_port,
    port_open,
    subprocess_env,
    wait_until,
)
from workflows.models import OutboxEvent
from workflows.outbox import outbox_relay_drain

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _notified(request) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(request=request).values_list("recipient__username", "event_id"))


def _task_event(request, action: str) -> OutboxEvent:
    return OutboxEvent.objects.get(
        kind=OutboxEvent.Kind.TASK,
        payload__kwargs__request_id=request.pk,
        payload__kwargs__action=action,
    )


def _results(worker_log: str, task_id: str) -> list[int]:
    """What each run of task `task_id` returned (notifications sent), from the worker's log."""
    found = re.findall(
        rf"notify_transition\[{re.escape(task_id)}\] succeeded in [\d.e-]+s: (\d+)", worker_log
    )
    return [int(sent) for sent in found]


def test_a_celery_worker_notifies_the_right_people_once_per_event(
    services: Services, requester, request_type, approver, second_approver
):
    # given a real Celery worker on the test database and the Redis broker
    worker = services.start(
        "celery-worker",
        CELERY_WORKER,
        env=subprocess_env(),
    )
    wait_until(lambda: " ready." in worker.log() or not worker.alive(), timeout=60, what="the worker")
    assert worker.alive(), worker.log()

    # when a requester submits a request
    request = make_request(requester=requester, request_type=request_type)
    submit = _task_event(request, "submit")

    # then the worker tells both reviewers (not the requester, who acted)
    wait_until(lambda: len(_notified(request)) == 2, timeout=30, what="notifications of the submission")
    assert _notified(request) == [("alex", str(submit.id)), ("bea", str(submit.id))]

    # when one reviewer approves it
    request_act(request_id=request.pk, action="approve", actor=approver, comment="ok")
    approve = _task_event(request, "approve")

    # then the requester is told, and nobody else
    wait_until(lambda: len(_notified(request)) == 3, timeout=30, what="the notification of the approval")
    assert ("rita", str(approve.id)) in _notified(request)
    subject = Notification.objects.get(event_id=str(approve.id)).subject
    assert subject == f"REQ-{request.pk} approved by {approver} at stage review; the request is approved"

    # when the approval's task event is delivered a second time (same event id)
    assert approve.status == OutboxEvent.Status.DELIVERED
    OutboxEvent.objects.filter(pk=approve.pk).update(
        status=OutboxEvent.Status.PENDING, available_at=timezone.now()
    )
    assert outbox_relay_drain().delivered == 1

    # then the worker ran it again, and it created no second notification
    wait_until(lambda: len(_results(worker.log(), str(approve.id))) == 2, timeout=30, what="the redelivery")
    assert _results(worker.log(), str(approve.id)) == [1, 0]
    assert len(_notified(request)) == 3
    assert Notification.objects.filter(event_id=str(approve.id)).count() == 1
    assert worker.alive(), worker.log()


def _receive_event_for(socket, ref: str, *, timeout: float) -> dict:
    """Read messages until an 'event' about `ref` arrives."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        message = json.loads(socket.recv(timeout=remaining))
        if message.get("type") == "event" and message["event"].get("ref") == ref:
            return message
    raise AssertionError(f"no event about {ref} within {timeout}s")


def test_a_change_reaches_a_websocket_served_by_another_process(
    services: Services, requester, request_type, approver, approver_group
):
    # given an ASGI server in another process, on the same database and Redis channel layer
    port = free_port()
    server = services.start(
        "asgi",
        [
            str(VENV_BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ],
        env=subprocess_env(OUTBOX_RELAY_IN_ASGI="0"),
    )
    wait_until(lambda: port_open(port) or not server.alive(), timeout=60, what="the ASGI server")
    assert server.alive(), server.log()
    # and an approver logged in there with a session made here
    client = Client()
    client.force_login(approver)
    session = client.cookies["sessionid"].value

    with connect(
        f"ws://127.0.0.1:{port}/ws/inbox/",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
        open_timeout=10,
    ) as socket:
        ready = json.loads(socket.recv(timeout=10))
        # their own stream, and the streams of their two groups (the approvers role, the
        # reviewers), each at the number of its last event
        assert ready["type"] == "ready"
        assert ready["epoch"]
        assert len(ready["streams"]) == 3
        group_stream = f"inbox.group.{approver_group.pk}"
        assert {f"inbox.user.{approver.pk}", group_stream} <= set(ready["streams"])

        # when a requester submits a request in this process
        request = make_request(requester=requester, request_type=request_type)

        # then the approver's socket in the other process receives the event within seconds
        message = _receive_event_for(socket, request.workflow_ref(), timeout=5)
    event = message["event"]
    # numbered on the group's stream, next after the number it was ready at
    assert (message["stream"], message["seq"]) == (group_stream, ready["streams"][group_stream] + 1)
    assert event["by"] == {"id": requester.pk, "name": requester.display_name}
    assert event["action"] == "submit"
    assert event["state"] == "in_review"
    assert event["topic"] == "instance.transitioned"
    submitted = OutboxEvent.objects.get(pk=event["id"], destination=f"inbox.group.{approver_group.pk}")
    assert submitted.status == OutboxEvent.Status.DELIVERED
