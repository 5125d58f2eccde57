"""Stream numbers, epochs and catch-up logs, in this process and in a real Redis."""

from __future__ import annotations

import asyncio
import os
import time
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
        # then subscribers get, in order, what the pub/sub layer itself unpacks, numbered
        # on from the moment the stream's counter was made (in ms)
        layer = RedisPubSubChannelLayer(hosts=[redis_url], prefix=prefix)
        decoded = [layer.deserialize(raw) for raw in published]
        born = decoded[0]["seq"] - 1
        assert abs(born / 1000 - time.time()) < 60
        assert [m["seq"] for m in decoded] == [born + 1, born + 2, born + 3, born + 4]
        assert decoded[0]["type"] == "relay.event"
        assert decoded[0]["event"] == {"id": "0", "empty": {}}
        assert decoded[0] == msgpack.unpackb(published[0])
        epoch = decoded[0]["epoch"]
        assert {m["epoch"] for m in decoded} == {epoch}
        reader = RedisStreams(redis_url, prefix)

        async def read() -> tuple[tuple[str, dict[str, int]], list[int] | None, object]:
            heads = await reader.heads(["inbox.user.7", "inbox.user.8"])
            recent = await reader.since("inbox.user.7", born + 2, born + 4)
            trimmed = await reader.since("inbox.user.7", 0, born + 4)
            return heads, [m.seq for m in recent or []], trimmed

        heads, recent, trimmed = asyncio.run(read())
        # and readers see the heads, catch up from the log, and learn when it was trimmed
        # (a stream not yet heard of starts its life when read: numbers to count on from)
        assert heads[0] == epoch
        assert heads[1]["inbox.user.7"] == born + 4
        assert abs(heads[1]["inbox.user.8"] / 1000 - time.time()) < 60
        assert recent == [born + 3, born + 4]
        assert trimmed is None
        # when Redis loses its data (a restart without persistence), a new epoch begins
        client.delete(*redis_keys(prefix, "inbox.user.7"))
        keys, args = stamp_args(prefix=prefix, stream="inbox.user.7", event={"id": "new"})
        assert script(keys=keys, args=args) > born + 4
        assert client.get(f"{prefix}:live:epoch").decode() != epoch
    finally:
        client.delete(*redis_keys(prefix, "inbox.user.7"), redis_keys(prefix, "inbox.user.8")[1])
        listener.close()


def test_a_redis_stream_counter_expires_and_a_client_holding_its_old_numbers_re_renders(settings, redis_url):
    settings.LIVE_STREAM_SECONDS = 1
    settings.LIVE_LOG_SECONDS = 60
    prefix = f"t{uuid.uuid4().hex[:8]}"
    stream = "inbox.group.3"
    client = redis.Redis.from_url(redis_url)
    script = stamp_script(client)
    _, counter_key, log_key = redis_keys(prefix, stream)
    reader = RedisStreams(redis_url, prefix)

    def stamp(n: int) -> int:
        keys, args = stamp_args(prefix=prefix, stream=stream, event={"id": str(n)})
        return int(script(keys=keys, args=args))

    async def catch_up(after: int, head: int) -> list[int] | None:
        missed = await reader.since(stream, after, head)
        return None if missed is None else [m.seq for m in missed]

    try:
        # given a client subscribed before the stream's first event, then two events
        epoch, heads = asyncio.run(reader.heads([stream]))
        start = heads[stream]
        first, second = stamp(1), stamp(2)
        # then the events follow the number it was given (no gap), and it could catch up
        assert (first, second) == (start + 1, start + 2)
        assert asyncio.run(catch_up(start, second)) == [first, second]
        # and the counter expires LIVE_STREAM_SECONDS after the last write
        assert 0 < client.ttl(counter_key) <= 1
        # when nothing is heard on the stream for longer, its counter is gone (the log, kept
        # longer here, still holds the old numbers)
        time.sleep(1.3)
        assert not client.exists(counter_key)
        # and the stream is heard again
        reborn = stamp(3)
        # then it starts a new life numbered above the old one: a connected client that saw
        # `second` sees a gap (not a duplicate) and asks
        assert reborn > second + 1
        head = asyncio.run(reader.heads([stream]))[1][stream]
        assert head == reborn
        # and whoever holds a number of the old life is told to re-render (None: the
        # consumer sends `resync`), never given the new numbers as if they followed it
        assert asyncio.run(catch_up(first, head)) is None
        assert asyncio.run(catch_up(second, head)) is None
        assert asyncio.run(catch_up(0, head)) is None
        # when the counter expires again and a client reconnects with nothing new on it
        time.sleep(1.3)
        epoch_now, heads = asyncio.run(reader.heads([stream]))
        # then the stream's new life starts above its cursor, in the same epoch, and it is
        # told to re-render rather than trust its number
        assert epoch_now == epoch
        assert heads[stream] > reborn
        assert asyncio.run(catch_up(reborn, heads[stream])) is None
    finally:
        client.delete(counter_key, log_key, f"{prefix}:live:epoch")
