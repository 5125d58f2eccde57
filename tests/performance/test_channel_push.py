"""The after-commit push sends a run of channel events in one hop and still records each
event's outcome on its own: on the in-memory layer, on Redis's pub/sub layer (one
pipelined round trip, production) and on channels-redis's core layer (one lasting loop)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.listening import channel_listen, channel_receive
from workflows.delivery import _publisher
from workflows.models import OutboxEvent
from workflows.outbox import channel_event, outbox_write

pytestmark = pytest.mark.django_db

BAD_GROUP = "not a valid group!"  # channels refuses the name: a failure of one destination


def redis_layer(prefix: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [django_settings.REDIS_URL], "expiry": 60, "prefix": prefix},
        }
    }


def listen(*groups: str) -> str:
    """A plain channel (readable from any event loop) in `groups`."""
    layer = get_channel_layer()
    assert layer is not None
    name = f"perf-listener.{uuid.uuid4().hex}"

    async def join() -> None:
        for group in groups:
            await layer.group_add(group, name)

    async_to_sync(join)()
    return name


def receive(channel: str, *, count: int) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    assert layer is not None

    async def take() -> list[dict[str, Any]]:
        return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]

    return async_to_sync(take)()


def push_three(django_capture_on_commit_callbacks: Any) -> list[OutboxEvent]:
    """Write a good, a bad and a good channel event in one transaction and let it commit."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ids = outbox_write(
            [
                channel_event(group="perf.first", topic="t", payload={"n": 1}),
                channel_event(group=BAD_GROUP, topic="t", payload={"n": 2}),
                channel_event(group="perf.third", topic="t", payload={"n": 3}),
            ]
        )
    return [OutboxEvent.objects.get(id=i) for i in ids]


def assert_only_the_bad_event_waits(events: list[OutboxEvent], received: list[dict[str, Any]]) -> None:
    first, bad, third = events
    assert (first.status, first.attempts) == (OutboxEvent.Status.DELIVERED, 1)
    assert (third.status, third.attempts) == (OutboxEvent.Status.DELIVERED, 1)
    assert (bad.status, bad.attempts, bad.delivered_at) == (OutboxEvent.Status.PENDING, 1, None)
    assert bad.last_error.startswith("TypeError"), bad.last_error
    assert sorted(m["event"]["n"] for m in received) == [1, 3]
    assert {m["event"]["id"] for m in received} == {str(first.id), str(third.id)}


IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_one_undeliverable_event_fails_alone_on_the_in_memory_layer(
    settings, django_capture_on_commit_callbacks
):
    # given someone listening to two groups on the in-memory layer of this process
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    channel = listen("perf.first", "perf.third")

    # when a transaction writes three channel events, the middle one to an impossible group
    events = push_three(django_capture_on_commit_callbacks)

    # then the two others went out and only the middle one waits for the relay, saying why
    assert_only_the_bad_event_waits(events, receive(channel, count=2))


@pytest.mark.integration
def test_one_undeliverable_event_fails_alone_on_redis_pubsub_in_one_pipeline(
    settings, django_capture_on_commit_callbacks
):
    # given the Redis pub/sub layer (production's) and someone listening to two groups on it
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [django_settings.REDIS_URL], "prefix": f"perf-{uuid.uuid4().hex[:8]}"},
        }
    }
    channel = channel_listen("perf.first", "perf.third")

    # when a transaction writes three channel events, the middle one to an impossible group
    with CaptureQueriesContext(connection) as captured:
        events = push_three(django_capture_on_commit_callbacks)

    # then the two others went out, received through the layer itself, and only the middle
    # one waits for the relay, saying why
    assert_only_the_bad_event_waits(events, channel_receive(channel, count=2))
    # and the push marked them delivered in one statement after the insert
    outbox = [q["sql"] for q in captured.captured_queries if "workflows_outboxevent" in q["sql"]]
    assert [s.split()[0] for s in outbox[:2]] == ["INSERT", "UPDATE"]


@pytest.mark.integration
def test_one_undeliverable_event_fails_alone_on_redis_over_one_lasting_loop(
    settings, django_capture_on_commit_callbacks
):
    # given channels-redis's core layer (for installations that configure it) and someone
    # listening to two groups on it
    settings.CHANNEL_LAYERS = redis_layer(f"perf-{uuid.uuid4().hex[:8]}")
    channel = listen("perf.first", "perf.third")

    # when two transactions each write three channel events, the middle one impossible
    events = push_three(django_capture_on_commit_callbacks)
    again = push_three(django_capture_on_commit_callbacks)

    # then each time the two others went out and only the middle one waits, saying why
    received = receive(channel, count=4)
    assert_only_the_bad_event_waits(
        events, [m for m in received if m["event"]["id"] in {str(e.id) for e in events}]
    )
    assert_only_the_bad_event_waits(
        again, [m for m in received if m["event"]["id"] in {str(e.id) for e in again}]
    )
    # and the pushes shared one event loop thread instead of starting one each
    senders = [t for t in threading.enumerate() if t.name == "outbox-channel-sender"]
    assert len(senders) == 1


@pytest.mark.integration
def test_a_redis_that_lost_its_scripts_still_gets_every_numbered_event_once(
    settings, django_capture_on_commit_callbacks
):
    # given the Redis pub/sub layer and someone listening to two live streams on it
    prefix = f"perf-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [django_settings.REDIS_URL], "prefix": prefix},
        }
    }
    channel = channel_listen("inbox.user.7001", "inbox.group.7002")
    # and a Redis that does not hold the numbering script the push runs by its digest
    # (restarted, or never ran it). Not SCRIPT FLUSH: that would pull the scripts from
    # under every other client of this Redis. The push's digest is made one Redis lacks.
    _publisher.client(django_settings.REDIS_URL)
    _publisher.stamp_script().sha = "0" * 40

    # when a transaction writes an event to each stream and a plain one, then another
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox_write(
            [
                channel_event(group="inbox.user.7001", topic="t", payload={"n": 1}),
                channel_event(group="perf.plain", topic="t", payload={"n": 2}),
                channel_event(group="inbox.group.7002", topic="t", payload={"n": 3}),
            ]
        )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox_write([channel_event(group="inbox.user.7001", topic="t", payload={"n": 4})])

    # then each numbered event arrived once, numbered in order on its stream (a stream's
    # first number is workflows.live's to choose; the next one follows it)
    received = channel_receive(channel, count=3)
    by_stream: dict[str, list[tuple[int, int]]] = {}
    for message in received:
        by_stream.setdefault(message["stream"], []).append((message["seq"], message["event"]["n"]))
    (group_event,) = by_stream["inbox.group.7002"]
    assert group_event[1] == 3
    (first, first_n), (second, second_n) = sorted(by_stream["inbox.user.7001"])
    assert (first_n, second_n, second - first) == (1, 4, 1)
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists()
