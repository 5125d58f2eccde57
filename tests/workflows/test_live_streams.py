"""Stream numbers, epochs and catch-up logs, in this process and in a real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid

import msgpack
import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer

from workflows.live import MemoryStreams, RedisStreams, redis_keys, stamp_args, stamp_script


def test_in_process_streams_number_each_stream_on_its_own_and_keep_a_bounded_log(settings):
    settings.LIVE_LOG_LENGTH = 2
    streams = MemoryStreams()
    # when three events go to one stream and one to another
    seqs = [streams.stamp("inbox.user.1", {"n": n})[1] for n in range(3)]
    other = streams.stamp("inbox.group.1", {"n": 9})[1]
    # then each stream counts on its own
    assert (seqs, other) == ([1, 2, 3], 1)
    epoch, heads = streams.heads(["inbox.user.1", "inbox.group.1", "inbox.user.2"])
    assert heads == {"inbox.user.1": 3, "inbox.group.1": 1, "inbox.user.2": 0}
    # and a client one behind gets the last event; one three behind must re-render
    assert [(m.seq, m.event) for m in streams.since("inbox.user.1", 2, 3) or []] == [(3, {"n": 2})]
    assert streams.since("inbox.user.1", 0, 3) is None
    # and a restart starts a new epoch from 1
    streams.restart()
    assert streams.heads(["inbox.user.1"])[0] != epoch
    assert streams.stamp("inbox.user.1", {"n": 0})[1] == 1


def test_in_process_log_entries_older_than_the_limit_are_not_replayed(settings):
    settings.LIVE_LOG_SECONDS = 0
    streams = MemoryStreams()
    streams.stamp("inbox.user.1", {"n": 1})
    # then even one event behind is too far once it is older than LIVE_LOG_SECONDS
    assert streams.since("inbox.user.1", 0, 1) is None


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs REDIS_URL (a real Redis)")
    return url


def test_the_redis_script_numbers_logs_and_publishes_what_the_pubsub_layer_reads(settings, redis_url):
    settings.LIVE_LOG_LENGTH = 3
    prefix = f"t{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    listener = client.pubsub()
    listener.subscribe(f"{prefix}__group__inbox.user.7")
    listener.get_message(timeout=2)
    script = stamp_script(client)
    try:
        # when four events are stamped on one stream
        for n in range(4):
            keys, args = stamp_args(prefix=prefix, stream="inbox.user.7", event={"id": str(n), "empty": {}})
            script(keys=keys, args=args)
        published = []
        for _ in range(4):
            message = listener.get_message(timeout=2)
            assert message is not None
            published.append(message["data"])
        # then subscribers get, in order, what the pub/sub layer itself unpacks
        layer = RedisPubSubChannelLayer(hosts=[redis_url], prefix=prefix)
        decoded = [layer.deserialize(raw) for raw in published]
        assert [m["seq"] for m in decoded] == [1, 2, 3, 4]
        assert decoded[0]["type"] == "relay.event"
        assert decoded[0]["event"] == {"id": "0", "empty": {}}
        assert decoded[0] == msgpack.unpackb(published[0])
        epoch = decoded[0]["epoch"]
        assert {m["epoch"] for m in decoded} == {epoch}
        reader = RedisStreams(redis_url, prefix)

        async def read() -> tuple[tuple[str, dict[str, int]], list[int] | None, object]:
            heads = await reader.heads(["inbox.user.7", "inbox.user.8"])
            recent = await reader.since("inbox.user.7", 2, 4)
            trimmed = await reader.since("inbox.user.7", 0, 4)
            return heads, [m.seq for m in recent or []], trimmed

        heads, recent, trimmed = asyncio.run(read())
        # and readers see the heads, catch up from the log, and learn when it was trimmed
        assert heads == (epoch, {"inbox.user.7": 4, "inbox.user.8": 0})
        assert recent == [3, 4]
        assert trimmed is None
        # when Redis loses its data (a restart without persistence), a new epoch begins at 1
        client.delete(*redis_keys(prefix, "inbox.user.7"))
        keys, args = stamp_args(prefix=prefix, stream="inbox.user.7", event={"id": "new"})
        assert script(keys=keys, args=args) == 1
        assert client.get(f"{prefix}:live:epoch").decode() != epoch
    finally:
        client.delete(*redis_keys(prefix, "inbox.user.7"))
        listener.close()
