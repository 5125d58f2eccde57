"""The outbox: events written with the change, pushed after commit, retried, dead-lettered,
requeued and purged; relayed by `manage.py outbox_relay`."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.services import request_act
from config.celery import app as celery_app
from tests.testapp.models import Ticket
from tests.workflows.support import (
    broker_messages,
    broker_use,
    channel_listen,
    channel_receive,
    db_snapshot,
)
from workflows import outbox
from workflows.models import AuditEntry, OutboxEvent
from workflows.outbox import (
    RELAY_MESSAGE_TYPE,
    channel_event,
    outbox_purge,
    outbox_relay_once,
    outbox_retry_dead,
    outbox_write,
    task_event,
)
from workflows.services import instance_channel_group, transition
from workflows.tasks import outbox_purge_task
from workflows.webhooks.events import FANOUT_TASK

# A Redis nobody listens on: a real channel layer / broker that fails like Redis being down.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"expiry": 60}}}
BROKEN_LAYER = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [UNREACHABLE_REDIS]}}
}

Events = dict[str, list[OutboxEvent]]


def events_of(result: Any) -> Events:
    """The events one transition wrote, by kind: channel events carry the instance's ref and
    the entry's seq, task events the entry's seq (only one instance has tasks in these tests);
    the step's webhook fan-out task apart."""
    ref, seq = result.instance.workflow_ref(), result.entry.seq
    found: Events = {"channel": [], "task": [], "webhook_fanout": []}
    for event in OutboxEvent.objects.order_by("created_at"):
        if event.kind == OutboxEvent.Kind.CHANNEL:
            if (event.payload.get("ref"), event.payload.get("audit_seq")) == (ref, seq):
                found["channel"].append(event)
        elif event.payload["kwargs"].get("audit_seq") == seq:
            # Every request's step also hands its webhooks to one fan-out task.
            found["webhook_fanout" if event.destination == FANOUT_TASK else "task"].append(event)
    return found


def task_messages() -> list[tuple[str, str, dict[str, Any]]]:
    """The task messages waiting at the broker (taken), but for the webhook fan-outs every
    request's step also sends (their own tests are the webhook ones)."""
    return [m for m in broker_messages() if m[0] != FANOUT_TASK]


def approve(request: ApprovalRequest, approver: User) -> Any:
    return request_act(request_id=request.pk, action="approve", actor=approver, comment="ok")


def reloaded(events: list[OutboxEvent]) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(id__in=[e.id for e in events]).order_by("created_at"))


def settle_outbox() -> None:
    """Mark what the fixtures wrote as delivered, so that the relay sees only this test's events."""
    OutboxEvent.objects.update(status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now())


@pytest.fixture
def broker_down(celery_broker: None) -> Iterator[None]:
    """The Celery broker is unreachable for the test; the readable one is back for teardown."""
    broker_use(UNREACHABLE_REDIS, {})
    yield
    broker_use(django_settings.REDIS_URL or "memory://", {})


def make_due(events: list[OutboxEvent]) -> None:
    OutboxEvent.objects.filter(id__in=[e.id for e in events]).update(
        available_at=timezone.now() - timedelta(seconds=1)
    )


# --- written with the change -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_transition_writes_its_events_in_its_own_transaction(
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
    requester: User,
    django_capture_on_commit_callbacks,
):
    # given a request in review
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        # when it is approved, inside a transaction not yet committed
        result = approve(submitted, approver)
        # then its events are already there, in that transaction, pending and untried
        events = events_of(result)
        assert {e.destination for e in events["channel"]} == {
            f"inbox.group.{approver_group.pk}",
            f"inbox.user.{requester.pk}",
            instance_channel_group(submitted),
        }
        assert [e.destination for e in events["task"]] == ["approvals.notify_transition"]
        assert events["task"][0].payload["kwargs"] == {
            "request_id": submitted.pk,
            "action": "approve",
            "audit_seq": result.entry.seq,
        }
        everything = events["channel"] + events["task"]
        assert {(e.status, e.attempts) for e in everything} == {("pending", 0)}
        payload = events["channel"][0].payload
        assert (payload["topic"], payload["state"], payload["version"]) == (
            "instance.transitioned",
            "approved",
            result.instance.version,
        )
    # and exactly one push waits for the commit
    assert len(callbacks) == 1
    assert {e.status for e in reloaded(everything)} == {"pending"}


@pytest.mark.django_db
def test_a_rolled_back_transition_leaves_no_event_and_no_entry(
    submitted: ApprovalRequest, approver: User, django_capture_on_commit_callbacks
):
    # given a request in review
    before = db_snapshot()
    # when its approval is part of a transaction that then fails
    with django_capture_on_commit_callbacks() as callbacks:  # noqa: SIM117  (the raises block holds two steps)
        with pytest.raises(RuntimeError, match="after the transition"), transaction.atomic():  # noqa: PT012
            approve(submitted, approver)
            raise RuntimeError("something after the transition failed")
    # then no event, no entry, no state change, and no push is left to run
    assert db_snapshot() == before
    assert callbacks == []


@pytest.mark.django_db
def test_a_failing_workflow_hook_leaves_no_event_and_no_entry(
    ticket: Ticket, worker: User, django_capture_on_commit_callbacks
):
    # given an open ticket whose effects hook will fail
    before = db_snapshot()
    # when a team member starts it
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError, match="hook failed"):
        transition(model=Ticket, instance_id=ticket.pk, name="start", actor=worker, data={"explode": True})
    # then nothing of the transition is left
    assert db_snapshot() == before
    assert callbacks == []
    assert Ticket.objects.get(pk=ticket.pk).state == "open"
    assert AuditEntry.objects.for_instance(ticket).count() == 1


# --- pushed after commit -----------------------------------------------------------------------


@pytest.mark.django_db
def test_after_commit_the_push_delivers_every_event(
    celery_broker: None,
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
    requester: User,
    django_capture_on_commit_callbacks,
):
    # given a real channel listening to the reviewers, the requester and the request's page
    channel = channel_listen(
        f"inbox.group.{approver_group.pk}", f"inbox.user.{requester.pk}", instance_channel_group(submitted)
    )
    # when an approval commits
    with django_capture_on_commit_callbacks(execute=True):
        result = approve(submitted, approver)
    events = events_of(result)
    # then the channel receives one message per group, each carrying its event's id
    messages = channel_receive(channel, count=3)
    assert {m["type"] for m in messages} == {RELAY_MESSAGE_TYPE}
    assert {m["event"]["id"] for m in messages} == {str(e.id) for e in events["channel"]}
    assert {(m["event"]["topic"], m["event"]["state"]) for m in messages} == {
        ("instance.transitioned", "approved")
    }
    # and the notification task reached the broker, its task id being the event id
    (task,) = events["task"]
    assert task_messages() == [
        (
            "approvals.notify_transition",
            str(task.id),
            {"request_id": submitted.pk, "action": "approve", "audit_seq": result.entry.seq},
        )
    ]
    # and every event is marked delivered, on the first attempt
    for event in reloaded(events["channel"] + events["task"]):
        assert (event.status, event.attempts, event.last_error) == ("delivered", 1, "")
        assert event.delivered_at is not None
    # and a relay, even once their lease is over, finds nothing left to deliver
    make_due(events["channel"] + events["task"])
    assert outbox_relay_once() == outbox.RelayResult()
    assert task_messages() == []


@pytest.mark.django_db
def test_a_failing_channel_layer_retries_with_backoff_then_gives_up(
    settings: Any,
    celery_broker: None,
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
    django_capture_on_commit_callbacks,
):
    # given a channel layer whose Redis is down, and at most 3 attempts per event
    settle_outbox()
    working_layers = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = BROKEN_LAYER
    settings.OUTBOX_MAX_ATTEMPTS = 3
    # when an approval commits
    pushed_at = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        result = approve(submitted, approver)
    events = events_of(result)
    channel_events = events["channel"]
    # then its channel events stay pending, with the error, due again after a backoff
    for event in reloaded(channel_events):
        assert (event.status, event.attempts, event.delivered_at) == ("pending", 1, None)
        assert event.last_error.startswith("ConnectionError")
        assert timedelta(seconds=1) < event.available_at - pushed_at <= timedelta(seconds=3)
    # while the task went out
    assert [e.status for e in reloaded(events["task"])] == ["delivered"]
    assert len(task_messages()) == 1
    # and the relay leaves them alone until they are due
    assert outbox_relay_once() == outbox.RelayResult()
    # when they come due again and fail again, the backoff doubles
    make_due(channel_events)
    retried_at = timezone.now()
    assert outbox_relay_once() == outbox.RelayResult(retried=3)
    for event in reloaded(channel_events):
        assert (event.status, event.attempts) == ("pending", 2)
        assert timedelta(seconds=3) < event.available_at - retried_at <= timedelta(seconds=5)
    # and at the last attempt they become dead letters, which the relay no longer picks up
    make_due(channel_events)
    assert outbox_relay_once() == outbox.RelayResult(dead=3)
    assert {(e.status, e.attempts) for e in reloaded(channel_events)} == {("dead", 3)}
    make_due(channel_events)
    assert outbox_relay_once() == outbox.RelayResult()
    # when Redis is back and the dead letters are requeued
    settings.CHANNEL_LAYERS = working_layers
    channel = channel_listen(f"inbox.group.{approver_group.pk}")
    assert outbox_retry_dead() == 3
    assert {(e.status, e.attempts, e.last_error) for e in reloaded(channel_events)} == {("pending", 0, "")}
    # then the relay delivers them
    assert outbox_relay_once() == outbox.RelayResult(delivered=3)
    assert {e.status for e in reloaded(channel_events)} == {"delivered"}
    (message,) = channel_receive(channel, count=1)
    assert message["event"]["topic"] == "instance.transitioned"


@pytest.mark.django_db
def test_a_task_for_an_unreachable_broker_waits_in_the_outbox(
    celery_broker: None, submitted: ApprovalRequest, approver: User, django_capture_on_commit_callbacks
):
    # given a broker that is down
    settle_outbox()
    broker_use(UNREACHABLE_REDIS, {})
    # when an approval commits
    with django_capture_on_commit_callbacks(execute=True):
        result = approve(submitted, approver)
    events = events_of(result)
    # then the task event waits, with the broker's error; the live events went out
    (task,) = reloaded(events["task"])
    assert (task.status, task.attempts) == ("pending", 1)
    assert "OperationalError" in task.last_error
    assert {e.status for e in reloaded(events["channel"])} == {"delivered"}
    # when the broker is back and the event is due
    broker_use(django_settings.REDIS_URL or "memory://", {})
    make_due([task])
    assert outbox_relay_once() == outbox.RelayResult(delivered=1)
    # then the task reaches it, once, under the event's id
    assert [(name, task_id) for name, task_id, _ in task_messages()] == [
        ("approvals.notify_transition", str(task.id))
    ]


@pytest.mark.django_db
def test_channel_events_wait_for_the_process_that_hosts_the_in_memory_layer(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    celery_broker: None,
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
    django_capture_on_commit_callbacks,
):
    # given a process (a worker, a command) that does not serve the in-memory layer's sockets
    settle_outbox()
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    settings.OUTBOX_CHANNEL_LAYER_IN_PROCESS = False
    monkeypatch.setattr(outbox, "_hosts_channel_layer", False)
    # when an approval commits there
    with django_capture_on_commit_callbacks(execute=True):
        result = approve(submitted, approver)
    events = events_of(result)
    # then its channel events are left pending, untried, while its task went out
    assert {(e.status, e.attempts) for e in reloaded(events["channel"])} == {("pending", 0)}
    assert [e.status for e in reloaded(events["task"])] == ["delivered"]
    assert len(task_messages()) == 1
    # and this process's relay leaves them too
    assert outbox_relay_once() == outbox.RelayResult()
    # when the relay runs in the process that hosts the layer  /  then they are delivered there
    monkeypatch.setattr(outbox, "_hosts_channel_layer", True)
    channel = channel_listen(f"inbox.group.{approver_group.pk}")
    assert outbox_relay_once() == outbox.RelayResult(delivered=3)
    assert channel_receive(channel, count=1)[0]["event"]["state"] == "approved"


# --- the push lease --------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_under_the_push_lease_are_left_to_the_push_until_it_runs_out(
    settings: Any,
    celery_broker: None,
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
    django_capture_on_commit_callbacks,
):
    # given a push lease of 30 seconds
    settle_outbox()
    settings.OUTBOX_PUSH_LEASE = 30
    # when an approval commits but its push does not run (the process died right after)
    written_from = timezone.now()
    with django_capture_on_commit_callbacks() as callbacks:
        result = approve(submitted, approver)
    written_by = timezone.now()
    assert len(callbacks) == 1
    events = events_of(result)
    everything = events["channel"] + events["task"]
    # then every event is leased to that push for 30 seconds from its writing
    lease = timedelta(seconds=30)
    for event in reloaded(everything):
        assert written_from + lease <= event.available_at <= written_by + lease
    # and a relay leaves them alone meanwhile
    assert outbox_relay_once() == outbox.RelayResult()
    assert {(e.status, e.attempts) for e in reloaded(everything)} == {("pending", 0)}
    assert task_messages() == []
    # when the lease is over
    make_due(everything)
    channel = channel_listen(f"inbox.group.{approver_group.pk}")
    # then the relay takes them and delivers each
    assert outbox_relay_once() == outbox.RelayResult(delivered=4)
    assert {(e.status, e.attempts) for e in reloaded(everything)} == {("delivered", 1)}
    assert channel_receive(channel, count=1)[0]["event"]["id"] in {str(e.id) for e in events["channel"]}
    assert [task_id for _, task_id, _ in task_messages()] == [str(events["task"][0].id)]


@pytest.mark.django_db
def test_channel_events_a_process_cannot_deliver_are_due_at_once_and_not_pushed(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    celery_broker: None,
    approver_group: Group,
    django_capture_on_commit_callbacks,
):
    # given a process (a worker, a command) that does not serve the in-memory layer's sockets
    settle_outbox()
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    settings.OUTBOX_CHANNEL_LAYER_IN_PROCESS = False
    monkeypatch.setattr(outbox, "_hosts_channel_layer", False)
    group = f"inbox.group.{approver_group.pk}"
    # when it writes a channel event and a task event in one transaction
    written_from = timezone.now()
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        live_id, task_id = outbox_write(
            [
                channel_event(group=group, topic="t", payload={"n": 1}),
                task_event(task="tests.outbox_probe", kwargs={"n": 2}),
            ]
        )
    written_by = timezone.now()
    live, task = OutboxEvent.objects.get(id=live_id), OutboxEvent.objects.get(id=task_id)
    # then the channel event is due for the relay at once, while the task is leased to the push
    assert written_from <= live.available_at <= written_by
    assert task.available_at >= written_from + timedelta(seconds=django_settings.OUTBOX_PUSH_LEASE)
    # when the commit's push runs
    (push,) = callbacks
    pushed = push()
    # then it delivered the task alone, and never tried the channel event
    assert pushed == outbox.RelayResult(delivered=1)
    assert [task_id for _, task_id, _ in task_messages()] == [str(task.id)]
    assert OutboxEvent.objects.get(id=task.id).status == "delivered"
    live.refresh_from_db()
    assert (live.status, live.attempts, live.last_error) == ("pending", 0, "")
    # and a transaction with only such channel events leaves no push to run at all
    with django_capture_on_commit_callbacks() as none, transaction.atomic():
        (other_id,) = outbox_write([channel_event(group=group, topic="t", payload={"n": 3})])
    assert none == []
    # when the relay of the process that hosts the layer runs  /  then they go out at once
    monkeypatch.setattr(outbox, "_hosts_channel_layer", True)
    channel = channel_listen(group)
    assert outbox_relay_once() == outbox.RelayResult(delivered=2)
    received = channel_receive(channel, count=2)
    assert [m["event"]["id"] for m in received] == [str(live.id), str(other_id)]


@pytest.mark.django_db
def test_with_the_broker_down_a_push_tries_it_once_for_all_its_tasks(
    broker_down: None, approver_group: Group, django_capture_on_commit_callbacks
):
    # given a broker that is down (each try blocks for the connection timeout) and a
    # channel that listens to the reviewers
    timeout = float(celery_app.conf.broker_connection_timeout)
    group = f"inbox.group.{approver_group.pk}"
    channel = channel_listen(group)
    # and a committed transaction that wrote three task events, a channel event among them
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        ids = outbox_write(
            [
                task_event(task="tests.outbox_probe", kwargs={"n": 1}),
                task_event(task="tests.outbox_probe", kwargs={"n": 2}),
                channel_event(group=group, topic="t", payload={"n": 3}),
                task_event(task="tests.outbox_probe", kwargs={"n": 4}),
            ]
        )
    (push,) = callbacks
    # when its push runs
    started = time.monotonic()
    pushed_at = timezone.now()
    pushed = push()
    took = time.monotonic() - started
    # then it waited for the broker about once, not once per task
    assert took < 2 * timeout + 1, f"the push took {took:.1f}s: it tried the dead broker more than once"
    # and all three tasks are rescheduled, each with the broker's error
    assert pushed == outbox.RelayResult(delivered=1, retried=3)
    tasks = [OutboxEvent.objects.get(id=i) for i in (ids[0], ids[1], ids[3])]
    for task in tasks:
        assert (task.status, task.attempts, task.delivered_at) == ("pending", 1, None)
        assert "OperationalError" in task.last_error, task.last_error
        assert task.available_at > pushed_at
    assert len({task.last_error for task in tasks}) == 1
    # while the channel event among them went out
    assert OutboxEvent.objects.get(id=ids[2]).status == "delivered"
    assert channel_receive(channel, count=1)[0]["event"]["id"] == str(ids[2])


@pytest.mark.django_db
def test_a_push_that_delivers_everything_is_one_sql_statement(
    celery_broker: None, submitted: ApprovalRequest, approver: User, django_capture_on_commit_callbacks
):
    # given an approval committed, its push not yet run
    with django_capture_on_commit_callbacks() as callbacks:
        result = approve(submitted, approver)
    (push,) = callbacks
    # when the push runs and every destination takes its event
    with CaptureQueriesContext(connection) as captured:
        pushed = push()
    # then it wrote the outcome in one UPDATE: no read, no lock, no transaction of its own
    assert pushed == outbox.RelayResult(delivered=5)  # three channel events, two tasks
    (sql,) = [q["sql"] for q in captured.captured_queries]
    assert sql.startswith('UPDATE "workflows_outboxevent"'), sql
    assert " CASE " not in sql, sql
    events = events_of(result)
    for event in reloaded(events["channel"] + events["task"]):
        assert (event.status, event.attempts) == ("delivered", 1)
        assert event.delivered_at is not None
    assert len(task_messages()) == 1


# --- the relay command, requeue and purge ------------------------------------------------------


@pytest.mark.django_db
def test_the_relay_command_delivers_what_the_push_did_not(
    celery_broker: None,
    signal_handlers_kept: None,
    submitted: ApprovalRequest,
    approver: User,
    approver_group: Group,
):
    # given a request created, submitted and approved, all committed but never pushed
    # (as if the process died right after each commit), and their push lease now over
    result = approve(submitted, approver)
    due = list(OutboxEvent.objects.all())
    assert {e.status for e in due} == {"pending"}
    make_due(due)
    # and an event that is not due yet
    later = channel_event(group=f"inbox.group.{approver_group.pk}", topic="later", payload={})
    later.available_at = timezone.now() + timedelta(minutes=5)
    later.save()
    channel = channel_listen(f"inbox.group.{approver_group.pk}")
    # when `manage.py outbox_relay --once` runs
    out = io.StringIO()
    call_command("outbox_relay", "--once", stdout=out)
    # then it delivers every due event and says so, leaving the later one pending
    assert f"delivered {len(due)}, retrying 0, dead 0" in out.getvalue()
    assert {e.status for e in reloaded(due)} == {"delivered"}
    assert OutboxEvent.objects.get(id=later.id).status == "pending"
    # and the reviewers hear of the submission and of the approval, in order
    messages = channel_receive(channel, count=2)
    assert [(m["event"]["action"], m["event"]["state"]) for m in messages] == [
        ("submit", "in_review"),
        ("approve", "approved"),
    ]
    assert messages[1]["event"]["id"] == str(
        next(
            e.id for e in events_of(result)["channel"] if e.destination == f"inbox.group.{approver_group.pk}"
        )
    )
    assert [args["action"] for _, _, args in task_messages()] == ["submit", "approve"]


@pytest.mark.django_db
def test_the_relay_command_requeues_dead_letters_first(
    celery_broker: None, signal_handlers_kept: None, approver_group: Group
):
    # given a dead letter
    settle_outbox()
    dead = channel_event(group=f"inbox.group.{approver_group.pk}", topic="t", payload={})
    dead.status, dead.attempts, dead.last_error = OutboxEvent.Status.DEAD, 8, "ConnectionError: down"
    dead.save()
    channel = channel_listen(f"inbox.group.{approver_group.pk}")
    # when the relay runs with --retry-dead
    out = io.StringIO()
    call_command("outbox_relay", "--once", "--retry-dead", stdout=out)
    # then it is queued again and delivered
    assert "1 dead event(s) queued again" in out.getvalue()
    assert "delivered 1" in out.getvalue()
    assert OutboxEvent.objects.get(id=dead.id).status == "delivered"
    assert channel_receive(channel, count=1)[0]["event"]["id"] == str(dead.id)


@pytest.mark.django_db
def test_retry_dead_requeues_only_the_events_named() -> None:
    dead: list[OutboxEvent] = []
    for _ in range(2):
        event = channel_event(group="g", topic="t", payload={})
        event.status, event.attempts = OutboxEvent.Status.DEAD, 8
        event.save()
        dead.append(event)
    assert outbox_retry_dead(event_ids=[dead[0].id]) == 1
    assert OutboxEvent.objects.get(id=dead[0].id).status == "pending"
    assert OutboxEvent.objects.get(id=dead[1].id).status == "dead"


@pytest.mark.django_db
def test_purge_removes_only_old_delivered_events(settings: Any):
    # given delivered events old and new, and old pending and dead ones
    now = timezone.now()

    def stored(status: str, age: timedelta) -> OutboxEvent:
        event = channel_event(group="g", topic="t", payload={})
        event.status, event.created_at = status, now - age
        event.delivered_at = now - age if status == "delivered" else None
        event.save()
        return event

    old_delivered = stored("delivered", timedelta(days=10))
    older_delivered = stored("delivered", timedelta(days=30))
    keep = [
        stored("delivered", timedelta(days=6)),
        stored("pending", timedelta(days=30)),
        stored("dead", timedelta(days=30)),
    ]
    # when delivered events older than a week are purged
    assert outbox_purge(older_than=timedelta(days=7)) == 2
    # then only those went
    remaining = set(OutboxEvent.objects.values_list("id", flat=True))
    assert remaining == {e.id for e in keep}
    assert not remaining & {old_delivered.id, older_delivered.id}
    # and the periodic task purges by OUTBOX_KEEP_DELIVERED_DAYS
    settings.OUTBOX_KEEP_DELIVERED_DAYS = 5
    assert outbox_purge_task() == 1
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {e.id for e in keep[1:]}
