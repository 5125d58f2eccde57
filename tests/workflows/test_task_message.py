"""The Celery task message the push LPUSHes is the one Celery itself would build."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from celery import current_app
from celery.utils.saferepr import saferepr

from workflows.delivery import _task_message
from workflows.models import OutboxEvent
from workflows.outbox import task_event

SHALLOW = {"request_id": 7, "action": "approve", "audit_seq": 3, "by": {"id": 1, "name": "Zoë 'Z'"}}
DEEP = {"a": {"b": {"c": {"d": [1, 2]}}}}
LONG = {"title": "x" * 3000, "items": list(range(500))}
ODD = {"lines": "a\nb", "path": "C:\\x", "quote": '"q"', "n": 1.5, "yes": True, "no": None, "e": []}


@pytest.mark.parametrize(
    "kwargs", [SHALLOW, DEEP, LONG, ODD, {}], ids=["shallow", "deep", "long", "odd", "none"]
)
def test_the_task_message_carries_celerys_own_headers_and_body(kwargs: dict[str, Any]):
    # given a task event
    event = task_event(task="approvals.notify_transition", kwargs=kwargs)
    event.id = uuid.uuid4()
    assert isinstance(event, OutboxEvent)

    # when its broker message is built
    envelope = json.loads(_task_message(event))

    # then its headers are what Celery's as_task_v2 writes, the log reprs included
    expected = current_app.amqp.as_task_v2(str(event.id), event.destination, args=(), kwargs=kwargs)
    headers = envelope["headers"]
    assert headers["kwargsrepr"] == expected.headers["kwargsrepr"]
    assert headers["kwargsrepr"] == saferepr(
        kwargs, current_app.amqp.kwargsrepr_maxsize, maxlevels=current_app.conf.task_repr_maxlevels
    )
    assert headers["argsrepr"] == expected.headers["argsrepr"]
    assert {k: v for k, v in headers.items() if k not in {"origin"}} == {
        k: v for k, v in json.loads(json.dumps(expected.headers)).items() if k not in {"origin"}
    }
    # and the body is the task's arguments
    body = json.loads(base64.b64decode(envelope["body"]))
    assert body[0] == []
    assert body[1] == kwargs
    assert envelope["properties"]["correlation_id"] == str(event.id)
