"""`mail_tasks_run` plays the Celery worker for mail in unit tests: it runs the send task
once for each of its outbox events not run yet, as a worker would receive it from the
broker (pushed after commit, or sent by the relay when due)."""

from __future__ import annotations

from typing import Any

from approvals.mail_sending import MAIL_SEND_TASK
from approvals.tasks import mail_send_task
from workflows.models import OutboxEvent

_ran: set[Any] = set()


def mail_tasks_run(*, rounds: int = 10) -> list[str]:
    """Run the send task of every mail event not run yet (until none is left); the results.

    A test's transaction never commits, so its pushes never happen: every event written is
    taken as handed over (a send task not yet due for its mail does nothing, as in a
    worker). Each is marked delivered, as the push or the relay would.
    """
    results: list[str] = []
    for _ in range(rounds):
        events = list(
            OutboxEvent.objects.filter(destination=MAIL_SEND_TASK).exclude(pk__in=_ran).order_by("created_at")
        )
        if not events:
            break
        for event in events:
            _ran.add(event.pk)
            OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.DELIVERED)
            results.append(mail_send_task(**event.payload["kwargs"]))
    return results
