"""The timers with a real Celery worker on PostgreSQL and Redis: an escalation that came due
while no worker ran happens once when one returns; a worker SIGKILLed in the middle of a
scan leaves every escalation done exactly once after the scan is delivered again."""

from __future__ import annotations

import os
import re
import signal
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from approvals.models import ApprovalRequest, Notification
from approvals.tasks import timers_scan_task
from approvals.timers.escalation import stage_visit_key
from tests.factories import (
    GroupFactory,
    RequestTypeFactory,
    UserFactory,
    make_approver,
    make_request,
    make_requester,
)
from tests.integration.conftest import (
    CELERY_WORKER,
    Service,
    Services,
    database_url_of_this_test,
    subprocess_env,
    wait_until,
)
from workflows.models import Handoff

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Redis hands an unacknowledged task to another worker after this many seconds.
VISIBILITY = "3"


def _worker(services: Services, name: str) -> Service:
    worker = services.start(
        name,
        CELERY_WORKER,
        env=subprocess_env(CELERY_VISIBILITY_TIMEOUT=VISIBILITY),
    )
    wait_until(lambda: " ready." in worker.log() or not worker.alive(), timeout=60, what=f"the worker {name}")
    assert worker.alive(), worker.log()
    return worker


def _overdue_items(count: int) -> tuple[list[Handoff], int]:
    """`count` requests whose one handoff is overdue; their holder's manager's id."""
    group = GroupFactory.create()
    boss = UserFactory.create(username="boss")
    approver = make_approver(group, manager=boss)
    stage = {"name": "review", "approvers": {"users": [approver.username]}, "sla": "1h"}
    kind = RequestTypeFactory.create(approver_group=group, policy={"stages": [stage]})
    requester = make_requester()
    handoffs = []
    for i in range(count):
        request = make_request(requester=requester, request_type=kind, title=f"item {i}")
        handoffs.append(Handoff.objects.for_instance(request).open().get())
    past = timezone.now() - timedelta(minutes=5)
    Handoff.objects.filter(pk__in=[h.pk for h in handoffs]).update(due_at=past, next_timer_at=past)
    return handoffs, boss.pk


def _keys(handoffs: list[Handoff]) -> list[str]:
    """The escalation notices' keys of these handoffs' stage visits."""
    keys = []
    for handoff in Handoff.objects.filter(pk__in=[h.pk for h in handoffs]):
        request = ApprovalRequest.objects.get(pk=int(handoff.object_id))
        keys.append(f"stage:{stage_visit_key(request=request, handoff=handoff)}:escalate")
    return sorted(keys)


def _scans_done(log: str) -> int:
    return len(re.findall(r"approvals\.timers_scan\[[0-9a-f-]+\] succeeded", log))


def _escalations(boss_id: int) -> list[str]:
    return sorted(
        Notification.objects.filter(recipient_id=boss_id, kind=Notification.Kind.ESCALATION).values_list(
            "event_id", flat=True
        )
    )


def test_an_escalation_due_while_no_worker_ran_happens_once_when_one_returns(services: Services) -> None:
    # given three overdue items, and beat firing the scan twice while no worker runs
    handoffs, boss = _overdue_items(3)
    timers_scan_task.apply_async()
    timers_scan_task.apply_async()
    assert _escalations(boss) == []
    # when a worker starts
    worker = _worker(services, "worker")
    wait_until(lambda: _scans_done(worker.log()) == 2, timeout=60, what="both scans")
    # then each item escalated once: one word to the manager per item
    assert _escalations(boss) == _keys(handoffs)
    assert Handoff.objects.filter(pk__in=[h.pk for h in handoffs], escalated_at__isnull=True).count() == 0


def test_a_worker_killed_mid_scan_leaves_each_escalation_done_once_after_redelivery(
    services: Services,
) -> None:
    # given three overdue items, and another connection holding an uncommitted notice that
    # the scan's second escalation must wait for (the same unique key)
    handoffs, boss = _overdue_items(3)
    blocker = psycopg.connect(database_url_of_this_test())
    blocker.execute(
        "INSERT INTO approvals_notification (recipient_id, request_id, event_id, kind, text, subject, body, "
        "created_at, digest_pending) VALUES (%s, %s, %s, 'escalation', '', 'blocker', '', now(), false)",
        [boss, int(handoffs[1].object_id), _keys([handoffs[1]])[0]],
    )
    first = _worker(services, "worker-1")
    timers_scan_task.apply_async()
    # when the worker is inside the scan, waiting on that row, it is SIGKILLed
    wait_until(_waiting_on_a_lock, timeout=30, what="the scan to reach the held row")
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    blocker.rollback()
    blocker.close()
    # then nothing of the killed scan was kept (its transaction died with it)
    assert _escalations(boss) == []
    # when another worker starts, the broker hands it the unacknowledged scan again
    second = _worker(services, "worker-2")
    wait_until(lambda: _scans_done(second.log()) >= 1, timeout=60, what="the redelivered scan")
    # then every item escalated exactly once
    assert _escalations(boss) == _keys(handoffs)
    assert Notification.objects.filter(kind=Notification.Kind.ESCALATION).count() == 3


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            ["%approvals_notification%"],
        )
        (waiting,) = cursor.fetchone()
    return bool(waiting)
